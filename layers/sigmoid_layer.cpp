#include "layers/sigmoid_layer.hpp"

#include <cmath>

namespace crema {

SigmoidLayer::SigmoidLayer(const LayerSpec& spec) : NeuronLayer(spec) { read_engine_only_params(spec, "sigmoid_param"); }

void SigmoidLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  for (int i = 0; i < n; ++i) y[i] = 0.5f * std::tanh(0.5f * x[i]) + 0.5f;
}

void SigmoidLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* y = top[0]->cpu_data();        // y: (n)
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  for (int i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
}

CREMA_REGISTER_LAYER("Sigmoid", SigmoidLayer);

}  // namespace crema
