#include "layers/relu_layer.hpp"

#include "engine/math.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ReLUParams ReLUParams::parse(MapReader r) {
  ReLUParams p;
  p.negative_slope = r.get_float("negative_slope", 0.f);
  r.allow({"engine"});
  r.finish();
  return p;
}

ReLULayer::ReLULayer(const LayerSpec& spec) : NeuronLayer(spec), params_(ReLUParams::parse(spec.params("relu_param"))) {}

void ReLULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  const float slope = params_.negative_slope;
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : slope * x[i];
}

void ReLULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  // In place, x was overwritten by y; sign(y) == sign(x) for slope >= 0, so y works.
  const float* y = top[0]->cpu_data();       // (n)
  const float* dy = top[0]->cpu_diff();      // (n)
  float* dx = bottom[0]->mutable_cpu_diff(); // (n), may alias dy
  const float slope = params_.negative_slope;
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : slope * dy[i];
}

#ifdef CREMA_WITH_CUDA
void ReLULayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::relu_forward(*ctx.cuda(), n, params_.negative_slope, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ReLULayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  // As on the CPU, the branch is read from the top (works in place).
  cuda::relu_backward(*ctx.cuda(), n, params_.negative_slope, top[0]->gpu_data(), top[0]->gpu_diff(),
                      bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("ReLU", ReLULayer);

}  // namespace crema
