#include "layers/log_layer.hpp"

#include <cmath>

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

CREMA_REGISTER_LAYER("Log", LogLayer);

}  // namespace crema
