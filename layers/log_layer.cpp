#include "layers/log_layer.hpp"

#include <cmath>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

LogLayer::LogLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(BaseScaleShiftParams::parse(spec.params("log_param"))) {
  base_scale_ = params_.base == -1.f ? 1.f : 1.f / std::log(params_.base);
}

void LogLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float base_scale = base_scale_, scale = params_.scale, shift = params_.shift;
  input_.forward(*bottom[0], *top[0], [=](float x) { return base_scale * std::log(scale * x + shift); });
}

void LogLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float numerator = params_.scale * base_scale_, scale = params_.scale, shift = params_.shift;
  input_.backward(*top[0], *bottom[0], [=](float x) { return numerator / (scale * x + shift); });
}

#ifdef CREMA_WITH_CUDA
void LogLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  const int64_t n = bottom[0]->count();
  cuda::log_forward(*ctx.cuda(), n, base_scale_, params_.scale, params_.shift, bottom[0]->gpu_data(),
                    top[0]->mutable_gpu_data());
}

void LogLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (n), as at forward
  cuda::log_backward(*ctx.cuda(), n, params_.scale * base_scale_, params_.scale, params_.shift, x, top[0]->gpu_diff(),
                     bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Log", LogLayer);

}  // namespace crema
