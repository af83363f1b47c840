// The `engine:` key of the layers that have more than one implementation
// (Convolution, Deconvolution, Pooling, LRN, BatchNorm, and the activations of
// activation_layer.hpp: ReLU, Sigmoid, TanH), with Caffe's names and
// crema's ONEDNN:
//   DEFAULT  the fastest correct one for the device: on the CPU oneDNN where it
//            computes exactly what Caffe computes, else the reference (BatchNorm:
//            the reference, faster than oneDNN's on plain NCHW); on a GPU
//            cuDNN where it does, else crema's CUDA kernels
//   CAFFE    the plain implementation: the CPU reference, and on a GPU crema's own
//            CUDA kernels where the layer has them
//   CUDNN    cuDNN on a GPU (the CPU reference on the CPU, as in Caffe)
//   ONEDNN   oneDNN on the CPU; refused on a GPU, and where oneDNN cannot compute
//            Caffe's result
#pragma once

#include <string>

#include "engine/config.hpp"
#include "engine/context.hpp"
#include "engine/layer_spec.hpp"
#include "layers/onednn/onednn_support.hpp"

namespace crema {

enum class Engine { DEFAULT, CAFFE, CUDNN, ONEDNN };

inline Engine parse_engine(MapReader& r) {
  return static_cast<Engine>(r.get_enum("engine", {"DEFAULT", "CAFFE", "CUDNN", "ONEDNN"}, 0, 0));
}

// Whether a layer set up on the CPU with `engine` should run oneDNN (when oneDNN
// can compute its configuration).
inline bool wants_onednn(Engine engine) { return engine == Engine::DEFAULT || engine == Engine::ONEDNN; }

// Fails at `spec` when `engine` is ONEDNN and `ctx` is a GPU; `key` names the
// parameter message (e.g. "convolution_param.engine").
inline void refuse_onednn_on_gpu(Engine engine, const Context& ctx, const LayerSpec& spec, const std::string& key) {
  if (engine == Engine::ONEDNN && ctx.on_gpu())
    spec.fail(key + ": ONEDNN runs on the CPU only; use DEFAULT or CUDNN on " + ctx.device().str() +
              ", or run on the CPU");
}

// Whether a product layer (Convolution, Deconvolution, InnerProduct) set up in `ctx`
// computes in bf16. Fails at `spec` where it cannot: on a GPU, on a CPU without
// native bf16, or with the fp32 reference engine asked for by `engine`.
inline bool wants_bf16(const Context& ctx, const LayerSpec& spec, Engine engine = Engine::DEFAULT) {
  if (ctx.precision() != Precision::bf16) return false;
  if (ctx.on_gpu())
    spec.fail("precision: bf16 runs on the CPU (oneDNN); on " + ctx.device().str() + " use precision: fp32");
  if (const std::string why = onednn::bf16_unsupported(); !why.empty())
    spec.fail("precision: bf16 is refused: " + why + "; use precision: fp32");
  if (engine == Engine::CAFFE || engine == Engine::CUDNN)
    spec.fail("precision: bf16 runs on oneDNN, but this layer's engine asks for the fp32 reference; use engine: "
              "DEFAULT or ONEDNN, or precision: fp32");
  return true;
}

}  // namespace crema
