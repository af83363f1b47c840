#include "layers/threshold_layer.hpp"

#include "layers/elementwise_map.hpp"

namespace crema {

ThresholdParams ThresholdParams::parse(MapReader r) {
  ThresholdParams p;
  p.threshold = r.get_float("threshold", 0.f);
  r.finish();
  return p;
}

ThresholdLayer::ThresholdLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(ThresholdParams::parse(spec.params("threshold_param"))) {}

void ThresholdLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float threshold = params_.threshold;
  map_forward(*bottom[0], *top[0], [=](float x) { return x > threshold ? 1.f : 0.f; });
}

void ThresholdLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[0]) bottom[0]->set_diff(0.f);
}

CREMA_REGISTER_LAYER("Threshold", ThresholdLayer);

}  // namespace crema
