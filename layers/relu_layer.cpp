#include "layers/relu_layer.hpp"

#include "layers/elementwise_map.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ReLUParams ReLUParams::parse(MapReader r) {
  ReLUParams p;
  p.negative_slope = r.get_float("negative_slope", 0.f);
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

ReLULayer::ReLULayer(const LayerSpec& spec, const ReLUParams& params)
    : ActivationLayer(spec, "relu_param", params.engine, {onednn::EltwiseOp::Kind::relu, params.negative_slope}),
      params_(params) {}

void ReLULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (forward_onednn(bottom, top)) return;
  const float slope = params_.negative_slope;
  map_forward(*bottom[0], *top[0], [slope](float x) { return x > 0.f ? x : slope * x; });
}

void ReLULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0] || backward_onednn(top, bottom)) return;
  const float slope = params_.negative_slope;
  map_backward(backward_values(top, bottom).cpu_data(), *top[0], *bottom[0],
               [slope](float v) { return v > 0.f ? 1.f : slope; });
}

#ifdef CREMA_WITH_CUDA
void ReLULayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::relu_forward(*ctx.cuda(), n, params_.negative_slope, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ReLULayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  // As on the CPU, the branch is read from the input, or from the top in place.
  cuda::relu_backward(*ctx.cuda(), n, params_.negative_slope, backward_values(top, bottom).gpu_data(),
                      top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("ReLU", ReLULayer);

}  // namespace crema
