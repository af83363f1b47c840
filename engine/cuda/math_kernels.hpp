// Host-callable wrappers for the device math shared by GPU layers and solvers (see
// math_kernels.cu): element-wise kernels and cuBLAS calls on the context's handle,
// all queued on the context's stream. Matrices are row-major, as in engine/math.hpp,
// so that a GPU path reads like the CPU code it mirrors; the wrappers map each call
// onto column-major cuBLAS. Every pointer is a device pointer.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

void gpu_set(const CudaContext& ctx, int n, float value, float* y);                      // y: (n)
void gpu_axpy(const CudaContext& ctx, int n, float alpha, const float* x, float* y);    // x, y: (n)

// C(M,N) = alpha * op(A) * op(B) + beta * C; op(A): (M,K), op(B): (K,N), row-major
// (cpu_gemm's contract).
void gpu_gemm(const CudaContext& ctx, bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
              const float* b, float beta, float* c);
// y = alpha * op(A) * x + beta * y; A: (M,N) row-major; x: (N) and y: (M), or
// x: (M) and y: (N) with trans_a (cpu_gemv's contract).
void gpu_gemv(const CudaContext& ctx, bool trans_a, int m, int n, float alpha, const float* a, const float* x,
              float beta, float* y);
void gpu_scal(const CudaContext& ctx, int n, float alpha, float* x);                              // x *= α
void gpu_copy(const CudaContext& ctx, int n, const float* x, float* y);  // y = x; x, y: (n), may be equal
void gpu_scale_to(const CudaContext& ctx, int n, float alpha, const float* x, float* y);  // y = αx
// Element-wise on (n) arrays; y may alias a or b.
void gpu_sub(const CudaContext& ctx, int n, const float* a, const float* b, float* y);  // y = a − b
void gpu_mul(const CudaContext& ctx, int n, const float* a, const float* b, float* y);  // y = a ⊙ b
void gpu_div(const CudaContext& ctx, int n, const float* a, const float* b, float* y);  // y = a / b
// Reductions returning to the host: they wait for the stream (cuBLAS in host pointer
// mode), so use them only for scalars Caffe also reads on the host.
float gpu_dot(const CudaContext& ctx, int n, const float* x, const float* y);
float gpu_asum(const CudaContext& ctx, int n, const float* x);

}  // namespace crema::cuda
