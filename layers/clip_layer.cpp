#include "layers/clip_layer.hpp"

#include <algorithm>
#include <string>

namespace crema {

ClipParams ClipParams::parse(MapReader r) {
  ClipParams p;
  p.min = r.required("min").as_float();
  p.max = r.required("max").as_float();
  r.finish();
  // Caffe accepts min > max and then outputs min everywhere; that is never meant.
  if (p.min > p.max)
    r.fail("max", "must not be below min (" + std::to_string(p.min) + "), got " + std::to_string(p.max));
  return p;
}

ClipLayer::ClipLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(ClipParams::parse(spec.params("clip_param"))) {}

void ClipLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const ClipParams p = params_;
  input_.forward(*bottom[0], *top[0], [p](float x) { return std::max(p.min, std::min(x, p.max)); });
}

void ClipLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const ClipParams p = params_;
  input_.backward(*top[0], *bottom[0], [p](float x) { return x >= p.min && x <= p.max ? 1.f : 0.f; });
}

CREMA_REGISTER_LAYER("Clip", ClipLayer);

}  // namespace crema
