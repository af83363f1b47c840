// cuDNN convolution for Convolution and Deconvolution, behind a plain C++ interface
// (no CUDA header) so that the layers' .cpp files can hold one. The convolution is
// described from its own point of view: `input` is the image the filter slides over
// (Convolution's bottom, Deconvolution's top) and `output` what it produces; the
// filter is (out_channels, in_channels / group, kh, kw) either way, Caffe's layout.
// Algorithms are chosen once per shape by cuDNN's heuristics among those whose
// workspace fits the limit, FP32 ones only unless TF32 is allowed, and kept until the
// shape, the limit or the precision changes.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/cuda/cuda_context.hpp"
#include "layers/conv_shape.hpp"

namespace crema::cuda {

class CudnnConvolution {
 public:
  CudnnConvolution();
  ~CudnnConvolution();
  CudnnConvolution(const CudnnConvolution&) = delete;
  CudnnConvolution& operator=(const CudnnConvolution&) = delete;

  // Describes `shape` and chooses the algorithms, unless the last call had the same
  // shape, limit and `tf32`. Grows the context's shared workspace to the largest the
  // algorithms need.
  // tf32: tensor cores may round the inputs to TF32 (precision: tf32).
  void prepare(const CudaContext& ctx, const ConvShape& shape, size_t workspace_limit_bytes, bool tf32);
  // How many times prepare() chose algorithms (tests: once per distinct shape).
  int algorithm_searches() const;

  // output (num, Co, OH, OW) = conv(input (num, Ci, H, W), filter)
  void forward(const CudaContext& ctx, const float* input, const float* filter, float* output);
  // input_diff (num, Ci, H, W) = convᵀ(output_diff (num, Co, OH, OW), filter), overwritten
  void backward_data(const CudaContext& ctx, const float* output_diff, const float* filter, float* input_diff);
  // filter_diff (Co, Ci/G, kh, kw) += gradient from input (num, Ci, H, W) and output_diff (num, Co, OH, OW)
  void backward_filter(const CudaContext& ctx, const float* input, const float* output_diff, float* filter_diff);

  // The bias (channels) belongs to the layer's top: the conv output for Convolution,
  // the conv input for Deconvolution (`on_input`).
  // top += bias on every position; top: (num, channels, h, w)
  void add_bias(const CudaContext& ctx, bool on_input, const float* bias, float* top);
  // bias_diff (channels) += top_diff summed over images and positions
  void backward_bias(const CudaContext& ctx, bool on_input, const float* top_diff, float* bias_diff);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::cuda
