#include "layers/dropout_layer.hpp"

#include <string>

namespace crema {

DropoutParams DropoutParams::parse(MapReader r) {
  DropoutParams p;
  p.dropout_ratio = r.get_float("dropout_ratio", 0.5f);
  p.scale_train = r.get_bool("scale_train", true);
  r.finish();
  // p = 1 would drop everything and make the scale 1 / 0.
  if (!(p.dropout_ratio >= 0.f && p.dropout_ratio < 1.f))
    r.fail("dropout_ratio", "must be in [0, 1), got " + std::to_string(p.dropout_ratio));
  return p;
}

DropoutLayer::DropoutLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(DropoutParams::parse(spec.params("dropout_param"))) {}

float DropoutLayer::train_scale() const {
  return params_.scale_train ? 1.f / (1.f - params_.dropout_ratio) : 1.f;
}

float DropoutLayer::test_scale() const { return params_.scale_train ? 1.f : 1.f - params_.dropout_ratio; }

void DropoutLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::reshape(bottom, top);
  mask_.resize(static_cast<size_t>(bottom[0]->count()));
}

void DropoutLayer::forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  if (spec_.phase == Phase::TRAIN) {
    const float keep = 1.f - params_.dropout_ratio;
    const float scale = train_scale();
    unsigned char* mask = mask_.data();  // mask: (n)
    for (int i = 0; i < n; ++i) {
      mask[i] = ctx.rng().bernoulli(keep) ? 1 : 0;
      // Multiplied rather than selected, so a NaN or Inf input stays visible as in Caffe.
      y[i] = x[i] * static_cast<float>(mask[i]) * scale;
    }
  } else {
    const float scale = test_scale();
    for (int i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void DropoutLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  if (spec_.phase == Phase::TRAIN) {
    const float scale = train_scale();
    const unsigned char* mask = mask_.data();  // mask: (n)
    for (int i = 0; i < n; ++i) dx[i] = dy[i] * static_cast<float>(mask[i]) * scale;
  } else {
    const float scale = test_scale();
    for (int i = 0; i < n; ++i) dx[i] = dy[i] * scale;
  }
}

CREMA_REGISTER_LAYER("Dropout", DropoutLayer);

}  // namespace crema
