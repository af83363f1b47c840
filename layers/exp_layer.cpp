#include "layers/exp_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <string>

#include "layers/elementwise_map.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

BaseScaleShiftParams BaseScaleShiftParams::parse(MapReader r) {
  BaseScaleShiftParams p;
  p.base = r.get_float("base", -1.f);
  p.scale = r.get_float("scale", 1.f);
  p.shift = r.get_float("shift", 0.f);
  r.finish();
  if (p.base != -1.f && !(p.base > 0.f))
    r.fail("base", "must be strictly positive, or -1 for e; got " + fmt::format("{}", p.base));
  return p;
}

ExpLayer::ExpLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(BaseScaleShiftParams::parse(spec.params("exp_param"))) {
  const bool natural = params_.base == -1.f;
  inner_scale_ = (natural ? 1.f : std::log(params_.base)) * params_.scale;
  outer_scale_ = params_.shift == 0.f ? 1.f : natural ? std::exp(params_.shift) : std::pow(params_.base, params_.shift);
}

void ExpLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float outer = outer_scale_, inner = inner_scale_;
  map_forward(*bottom[0], *top[0], [=](float x) { return outer * std::exp(inner * x); });
}

void ExpLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float inner = inner_scale_;
  map_backward(top[0]->cpu_data(), *top[0], *bottom[0], [=](float y) { return y * inner; });
}

#ifdef CREMA_WITH_CUDA
void ExpLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::exp_forward(*ctx.cuda(), n, inner_scale_, outer_scale_, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ExpLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  cuda::exp_backward(*ctx.cuda(), n, inner_scale_, top[0]->gpu_data(), top[0]->gpu_diff(),
                     bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Exp", ExpLayer);

}  // namespace crema
