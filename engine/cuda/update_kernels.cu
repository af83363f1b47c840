// The update rules of engine/update_rules.cpp as device kernels, one thread per
// element in grid-stride loops, with the CPU loops' order of float operations.
#include "engine/cuda/grid.hpp"
#include "engine/cuda/update_kernels.hpp"

#include "engine/cuda/cuda_runtime_api.hpp"

namespace crema::cuda {

namespace {
__global__ void sgd_kernel(int64_t n, float rate, float mu, float* g, float* h1) {  // g, h1: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    h1[i] = rate * g[i] + mu * h1[i];  // V = μV + rate·g
    g[i] = h1[i];
  }
}

__global__ void nesterov_kernel(int64_t n, float rate, float mu, float* g, float* h1) {  // g, h1: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float previous = h1[i];
    h1[i] = rate * g[i] + mu * previous;
    g[i] = (1.f + mu) * h1[i] - mu * previous;
  }
}

__global__ void adagrad_kernel(int64_t n, float rate, float delta, float* g, float* h1) {  // g, h1: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    h1[i] += g[i] * g[i];
    g[i] = rate * (g[i] / (sqrtf(h1[i]) + delta));
  }
}

__global__ void rmsprop_kernel(int64_t n, float rate, float rho, float delta, float* g, float* h1) {  // g, h1: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    h1[i] = (1.f - rho) * (g[i] * g[i]) + rho * h1[i];
    g[i] = rate * (g[i] / (sqrtf(h1[i]) + delta));
  }
}

__global__ void adadelta_kernel(int64_t n, float rate, float mu, float delta, float* g, float* h1,
                                float* h2) {  // g, h1, h2: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    h1[i] = (1.f - mu) * (g[i] * g[i]) + mu * h1[i];
    const float u = g[i] * sqrtf((delta + h2[i]) / (delta + h1[i]));
    h2[i] = (1.f - mu) * (u * u) + mu * h2[i];
    g[i] = rate * u;
  }
}

__global__ void adam_kernel(int64_t n, float scale, float b1, float b2, float delta, float* g, float* h1,
                            float* h2) {  // g, h1 (m), h2 (v): (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    h1[i] = (1.f - b1) * g[i] + b1 * h1[i];
    h2[i] = (1.f - b2) * (g[i] * g[i]) + b2 * h2[i];
    g[i] = scale * (h1[i] / (sqrtf(h2[i]) + delta));
  }
}

__global__ void add_decay_kernel(int64_t n, float coeff, const float* w, bool l1, float* out) {  // w, out: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float v = w[i];
    out[i] += l1 ? coeff * static_cast<float>((v > 0.f) - (v < 0.f)) : coeff * v;
  }
}

// Each block sums its grid-stride share in shared memory, then adds it to *sum.
__global__ void sumsq_kernel(int64_t n, const float* x, double* sum) {  // x: (n); sum: (1)
  __shared__ double partial[kThreads];
  double s = 0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) s += static_cast<double>(x[i]) * x[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(sum, partial[0]);
}

}  // namespace

void gpu_sgd_update(const CudaContext& ctx, int n, float rate, float momentum, float* g, float* h1) {
  launch(ctx, n, sgd_kernel, rate, momentum, g, h1);
}
void gpu_nesterov_update(const CudaContext& ctx, int n, float rate, float momentum, float* g, float* h1) {
  launch(ctx, n, nesterov_kernel, rate, momentum, g, h1);
}
void gpu_adagrad_update(const CudaContext& ctx, int n, float rate, float delta, float* g, float* h1) {
  launch(ctx, n, adagrad_kernel, rate, delta, g, h1);
}
void gpu_rmsprop_update(const CudaContext& ctx, int n, float rate, float rms_decay, float delta, float* g, float* h1) {
  launch(ctx, n, rmsprop_kernel, rate, rms_decay, delta, g, h1);
}
void gpu_adadelta_update(const CudaContext& ctx, int n, float rate, float momentum, float delta, float* g, float* h1,
                         float* h2) {
  launch(ctx, n, adadelta_kernel, rate, momentum, delta, g, h1, h2);
}
void gpu_adam_update(const CudaContext& ctx, int n, float scale, float beta1, float beta2, float delta, float* g,
                     float* h1, float* h2) {
  launch(ctx, n, adam_kernel, scale, beta1, beta2, delta, g, h1, h2);
}
void gpu_add_decay(const CudaContext& ctx, int n, float coeff, const float* w, bool l1, float* out) {
  launch(ctx, n, add_decay_kernel, coeff, w, l1, out);
}

double gpu_sumsq(const CudaContext& ctx, const DeviceSpan* spans, int count) {
  const cudaStream_t stream = stream_of(ctx);
  // The scratch double comes from the caching allocator (safe: it is used on the
  // compute stream only), so steady-state steps do not cudaMalloc, and devices
  // without stream-ordered memory pools work too.
  struct Scratch {
    int device = -1;
    void* p = alloc_device(sizeof(double), &device);
    ~Scratch() { free_device(p, device); }
  } scratch;
  double* sum = static_cast<double*>(scratch.p);  // (1)
  double result = 0;
  CREMA_CUDA_CHECK(cudaMemsetAsync(sum, 0, sizeof(double), stream));
  for (int i = 0; i < count; ++i) launch(ctx, spans[i].n, sumsq_kernel, spans[i].x, sum);
  CREMA_CUDA_CHECK(cudaMemcpyAsync(&result, sum, sizeof(double), cudaMemcpyDeviceToHost, stream));
  CREMA_CUDA_CHECK(cudaStreamSynchronize(stream));
  return result;
}

}  // namespace crema::cuda
