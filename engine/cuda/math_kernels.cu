// Element-wise device kernels and cuBLAS wrappers shared by GPU layers and solvers.
// Grid-stride loops (engine/cuda/grid.hpp) so that one launch configuration covers any size.
#include "engine/cuda/grid.hpp"
#include "engine/cuda/math_kernels.hpp"

namespace crema::cuda {

namespace {
__global__ void set_kernel(int64_t n, float value, float* y) {  // y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = value;
}

__global__ void axpy_kernel(int64_t n, float alpha, const float* x, float* y) {  // x, y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] += alpha * x[i];
}

__global__ void scal_kernel(int64_t n, float alpha, float* x) {  // x: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= alpha;
}

__global__ void scale_to_kernel(int64_t n, float alpha, const float* x, float* y) {  // x, y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = alpha * x[i];
}

__global__ void sub_kernel(int64_t n, const float* a, const float* b, float* y) {  // a, b, y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = a[i] - b[i];
}

__global__ void mul_kernel(int64_t n, const float* a, const float* b, float* y) {  // a, b, y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = a[i] * b[i];
}

__global__ void div_kernel(int64_t n, const float* a, const float* b, float* y) {  // a, b, y: (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = a[i] / b[i];
}
}  // namespace

void gpu_set(const CudaContext& ctx, int n, float value, float* y) {
  launch(ctx, n, set_kernel, value, y);
}

void gpu_axpy(const CudaContext& ctx, int n, float alpha, const float* x, float* y) {
  launch(ctx, n, axpy_kernel, alpha, x, y);
}

void gpu_gemm(const CudaContext& ctx, bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
              const float* b, float beta, float* c) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // an empty product (cuBLAS would refuse lda = 0): C = beta * C, where 0 * NaN stays 0
    if (beta == 0.f) return gpu_set(ctx, m * n, 0.f, c);
    return gpu_scal(ctx, m * n, beta, c);
  }
  // cuBLAS is column-major: the row-major C (M,N) is the column-major Cᵀ (N,M) with
  // ldc = N, and Cᵀ = op(B)ᵀ·op(A)ᵀ. The row-major B read column-major is Bᵀ, so
  // op(B)ᵀ is B as stored (no transpose) unless trans_b; likewise for A. The leading
  // dimensions are the stored row lengths: A is (M,K) or (K,M), B is (K,N) or (N,K).
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CREMA_CUDA_CHECK(cublasSgemm(blas_of(ctx), op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, n));
}

void gpu_gemv(const CudaContext& ctx, bool trans_a, int m, int n, float alpha, const float* a, const float* x,
              float beta, float* y) {
  const int y_count = trans_a ? n : m, summed = trans_a ? m : n;
  if (y_count <= 0) return;
  if (summed <= 0) {  // an empty sum: y = beta * y, as BLAS (cuBLAS would refuse lda = 0)
    if (beta == 0.f) return gpu_set(ctx, y_count, 0.f, y);
    return gpu_scal(ctx, y_count, beta, y);
  }
  // The row-major A (M,N) read column-major is Aᵀ (N,M) with lda = N: A·x is a
  // transposed column-major product, Aᵀ·x a plain one.
  const cublasOperation_t op = trans_a ? CUBLAS_OP_N : CUBLAS_OP_T;
  CREMA_CUDA_CHECK(cublasSgemv(blas_of(ctx), op, n, m, &alpha, a, n, x, 1, &beta, y, 1));
}

void gpu_scal(const CudaContext& ctx, int n, float alpha, float* x) {
  launch(ctx, n, scal_kernel, alpha, x);
}

void gpu_copy(const CudaContext& ctx, int n, const float* x, float* y) {
  if (n <= 0 || x == y) return;
  CREMA_CUDA_CHECK(cudaMemcpyAsync(y, x, sizeof(float) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice,
                                   stream_of(ctx)));
}

void gpu_scale_to(const CudaContext& ctx, int n, float alpha, const float* x, float* y) {
  launch(ctx, n, scale_to_kernel, alpha, x, y);
}

void gpu_sub(const CudaContext& ctx, int n, const float* a, const float* b, float* y) {
  launch(ctx, n, sub_kernel, a, b, y);
}

void gpu_mul(const CudaContext& ctx, int n, const float* a, const float* b, float* y) {
  launch(ctx, n, mul_kernel, a, b, y);
}

void gpu_div(const CudaContext& ctx, int n, const float* a, const float* b, float* y) {
  launch(ctx, n, div_kernel, a, b, y);
}

float gpu_dot(const CudaContext& ctx, int n, const float* x, const float* y) {
  float result = 0.f;
  if (n <= 0) return result;
  // Host pointer mode (the handle's default): cuBLAS waits for the stream and the result.
  CREMA_CUDA_CHECK(cublasSdot(blas_of(ctx), n, x, 1, y, 1, &result));
  return result;
}

float gpu_asum(const CudaContext& ctx, int n, const float* x) {
  float result = 0.f;
  if (n <= 0) return result;
  CREMA_CUDA_CHECK(cublasSasum(blas_of(ctx), n, x, 1, &result));
  return result;
}

}  // namespace crema::cuda
