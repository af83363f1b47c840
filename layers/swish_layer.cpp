#include "layers/swish_layer.hpp"

#include "layers/sigmoid_function.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

SwishParams SwishParams::parse(MapReader r) {
  SwishParams p;
  p.beta = r.get_float("beta", 1.f);
  r.finish();
  return p;
}

SwishLayer::SwishLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(SwishParams::parse(spec.params("swish_param"))) {}

void SwishLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::reshape(bottom, top);
  sigmoid_.reshape_like(*bottom[0]);
}

void SwishLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* s = sigmoid_.mutable_cpu_data();  // s: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  for (int i = 0; i < n; ++i) {
    s[i] = sigmoid(params_.beta * x[i]);
    y[i] = x[i] * s[i];
  }
}

void SwishLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* s = sigmoid_.cpu_data();       // s: (n)
  const float* y = top[0]->cpu_data();        // y: (n)
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  const float beta = params_.beta;
  for (int i = 0; i < n; ++i) dx[i] = dy[i] * (beta * y[i] + s[i] * (1.f - beta * y[i]));
}

#ifdef CREMA_WITH_CUDA
void SwishLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::swish_forward(*ctx.cuda(), n, params_.beta, bottom[0]->gpu_data(), sigmoid_.mutable_gpu_data(),
                      top[0]->mutable_gpu_data());
}

void SwishLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  cuda::swish_backward(*ctx.cuda(), n, params_.beta, sigmoid_.gpu_data(), top[0]->gpu_data(), top[0]->gpu_diff(),
                       bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Swish", SwishLayer);

}  // namespace crema
