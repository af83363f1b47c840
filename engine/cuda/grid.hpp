// Launch helpers shared by the .cu files: a grid-stride loop over n elements on the
// context's stream, checked after the launch. Included only by .cu files (it holds
// device code). Indices are 64-bit so that i + stride cannot overflow near 2^31.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

constexpr int kThreads = 256;

// Enough blocks for one element per thread, capped: the loops stride over the rest.
// At least one, as a grid of 0 blocks is a launch error, not an empty loop.
inline int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : blocks < 4096 ? static_cast<int>(blocks) : 4096;
}

// One block per item (a row, a group) for kernels whose blocks stride over items,
// capped as blocks_for is.
inline int blocks_per_item(int items) { return items < 4096 ? items : 4096; }

inline cudaStream_t stream_of(const CudaContext& ctx) { return static_cast<cudaStream_t>(ctx.stream()); }
inline cublasHandle_t blas_of(const CudaContext& ctx) { return static_cast<cublasHandle_t>(ctx.cublas()); }

__device__ inline int64_t first_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t grid_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// kernel(n, args...) over n elements (nothing for n <= 0), on ctx's stream.
template <typename Kernel, typename... Args>
void launch(const CudaContext& ctx, int64_t n, Kernel kernel, Args... args) {
  if (n <= 0) return;
  kernel<<<blocks_for(n), kThreads, 0, stream_of(ctx)>>>(n, args...);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

}  // namespace crema::cuda
