#include "layers/elu_layer.hpp"

#include <algorithm>
#include <cmath>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ELUParams ELUParams::parse(MapReader r) {
  ELUParams p;
  p.alpha = r.get_float("alpha", 1.f);
  r.finish();
  return p;
}

ELULayer::ELULayer(const LayerSpec& spec) : NeuronLayer(spec), params_(ELUParams::parse(spec.params("elu_param"))) {}

void ELULayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0] && params_.alpha < 0.f)
    spec_.fail("ELU with a negative elu_param.alpha cannot run in place (its output no longer tells which "
               "inputs were positive); give the top its own name");
  NeuronLayer::reshape(bottom, top);
}

void ELULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  const float alpha = params_.alpha;
  for (int i = 0; i < n; ++i) y[i] = std::max(x[i], 0.f) + alpha * (std::exp(std::min(x[i], 0.f)) - 1.f);
}

void ELULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();     // x: (n); y when in place (same sign)
  const float* y = top[0]->cpu_data();        // y: (n)
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  const float alpha = params_.alpha;
  for (int i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : dy[i] * (y[i] + alpha);
}

#ifdef CREMA_WITH_CUDA
void ELULayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::elu_forward(*ctx.cuda(), n, params_.alpha, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ELULayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  // As on the CPU, the branch is read from the bottom (y when in place, same sign).
  cuda::elu_backward(*ctx.cuda(), n, params_.alpha, bottom[0]->gpu_data(), top[0]->gpu_data(), top[0]->gpu_diff(),
                     bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("ELU", ELULayer);

}  // namespace crema
