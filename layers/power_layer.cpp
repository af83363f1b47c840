#include "layers/power_layer.hpp"

#include <cmath>

#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

PowerParams PowerParams::parse(MapReader r) {
  PowerParams p;
  p.power = r.get_float("power", 1.f);
  p.scale = r.get_float("scale", 1.f);
  p.shift = r.get_float("shift", 0.f);
  r.finish();
  return p;
}

PowerLayer::PowerLayer(const LayerSpec& spec)
    : NeuronLayer(spec),
      params_(PowerParams::parse(spec.params("power_param"))),
      diff_scale_(params_.power * params_.scale) {}

void PowerLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (diff_scale_ == 0.f) {
    // The output does not depend on x (even where x is inf or NaN).
    top[0]->set_data(params_.power == 0.f ? 1.f : std::pow(params_.shift, params_.power));
    return;
  }
  const PowerParams p = params_;
  input_.forward(*bottom[0], *top[0], [p](float x) { return std::pow(p.shift + p.scale * x, p.power); });
}

void PowerLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (diff_scale_ == 0.f) {
    bottom[0]->set_diff(0.f);
    return;
  }
  const PowerParams p = params_;
  const float diff_scale = diff_scale_;
  input_.backward(*top[0], *bottom[0],
                  [p, diff_scale](float x) { return diff_scale * std::pow(p.shift + p.scale * x, p.power - 1.f); });
}

#ifdef CREMA_WITH_CUDA
void PowerLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  if (diff_scale_ == 0.f) {
    // The output does not depend on x (even where x is inf or NaN).
    cuda::gpu_set(*ctx.cuda(), top[0]->count(), params_.power == 0.f ? 1.f : std::pow(params_.shift, params_.power),
                  top[0]->mutable_gpu_data());
    return;
  }
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  cuda::power_forward(*ctx.cuda(), n, params_.power, params_.scale, params_.shift, bottom[0]->gpu_data(),
                      top[0]->mutable_gpu_data());
}

void PowerLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (diff_scale_ == 0.f) {
    cuda::gpu_set(*ctx.cuda(), bottom[0]->count(), 0.f, bottom[0]->mutable_gpu_diff());
    return;
  }
  const int64_t n = bottom[0]->count();
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (n), as at forward
  cuda::power_backward(*ctx.cuda(), n, params_.power, params_.scale, params_.shift, diff_scale_, x,
                       top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Power", PowerLayer);

}  // namespace crema
