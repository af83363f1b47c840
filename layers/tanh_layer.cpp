#include "layers/tanh_layer.hpp"

#include <cmath>

namespace crema {

TanHLayer::TanHLayer(const LayerSpec& spec) : NeuronLayer(spec) { read_engine_only_params(spec, "tanh_param"); }

void TanHLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  for (int i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void TanHLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* y = top[0]->cpu_data();        // y: (n)
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  for (int i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}

CREMA_REGISTER_LAYER("TanH", TanHLayer);

}  // namespace crema
