// Element-wise device kernels shared by GPU layers and solvers. Grid-stride loops so
// that one launch configuration covers any size.
#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/math_kernels.hpp"

namespace crema::cuda {

namespace {
constexpr int kThreads = 256;
int blocks_for(int n) { return (n + kThreads - 1) / kThreads < 4096 ? (n + kThreads - 1) / kThreads : 4096; }

__global__ void set_kernel(int n, float value, float* y) {  // y: (n)
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = value;
}

__global__ void axpy_kernel(int n, float alpha, const float* x, float* y) {  // x, y: (n)
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] += alpha * x[i];
}
}  // namespace

void gpu_set(const CudaContext& ctx, int n, float value, float* y) {
  if (n <= 0) return;
  set_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(ctx.stream())>>>(n, value, y);
  CREMA_CUDA_CHECK(cudaGetLastError());
}

void gpu_axpy(const CudaContext& ctx, int n, float alpha, const float* x, float* y) {
  if (n <= 0) return;
  axpy_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(ctx.stream())>>>(n, alpha, x, y);
  CREMA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace crema::cuda
