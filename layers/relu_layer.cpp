#include "layers/relu_layer.hpp"

#include "engine/math.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ReLUParams ReLUParams::parse(MapReader r) {
  ReLUParams p;
  p.negative_slope = r.get_float("negative_slope", 0.f);
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

ReLULayer::ReLULayer(const LayerSpec& spec, const ReLUParams& params)
    : ActivationLayer(spec, "relu_param", params.engine, {onednn::EltwiseOp::Kind::relu, params.negative_slope}),
      params_(params) {}

namespace {
// y = max(x, 0) + slope * min(x, 0) over n values; y may alias x.
void relu(const float* x, float* y, long n, float slope) {
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (long i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : slope * x[i];
}

// dx = dy where y > 0, slope * dy elsewhere; dx may alias dy. In place, x was
// overwritten by y; sign(y) == sign(x) for slope >= 0, so y works.
void relu_gradient(const float* y, const float* dy, float* dx, long n, float slope) {
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (long i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : slope * dy[i];
}
}  // namespace

void ReLULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (forward_onednn(bottom, top)) return;
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  relu(x, y, bottom[0]->count(), params_.negative_slope);
}

void ReLULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0] || backward_onednn(top, bottom)) return;
  const float* y = top[0]->cpu_data();        // (n)
  const float* dy = top[0]->cpu_diff();       // (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // (n), may alias dy
  relu_gradient(y, dy, dx, bottom[0]->count(), params_.negative_slope);
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
