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

// In place on a layout copy (a oneDNN convolution's blocked output), ReLU runs on
// that buffer as it is, padding included (ReLU keeps its zeros), so the next oneDNN
// layer takes the blob without a conversion either way.
void ReLULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  SyncedMemory& x_memory = *bottom[0]->data_memory();
  if (x_memory.layout() && &x_memory == top[0]->data_memory().get()) {
    LayoutCopy& x = *x_memory.mutable_layout();
    return relu(x.floats(), x.floats(), static_cast<long>(x.float_count()), params_.negative_slope);
  }
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  relu(x, y, bottom[0]->count(), params_.negative_slope);
}

void ReLULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  LayoutCopy* y_layout = top[0]->data_memory()->layout();
  SyncedMemory& dy_memory = *top[0]->diff_memory();
  if (y_layout && dy_memory.layout() && &dy_memory == bottom[0]->diff_memory().get() &&
      y_layout->same_layout(*dy_memory.layout())) {
    LayoutCopy& dy = *dy_memory.mutable_layout();
    return relu_gradient(y_layout->floats(), dy.floats(), dy.floats(),
                         static_cast<long>(dy.float_count()), params_.negative_slope);
  }
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
