// Kernels declared in blas_kernels.hpp: grid-stride loops over 64-bit indices.
#include "engine/cuda/grid.hpp"
#include "layers/cuda/blas_kernels.hpp"

namespace crema::cuda {

namespace {
__global__ void broadcast_apply_kernel(int64_t n, int dim, int inner, const float* x, const float* scale,
                                       const float* bias, float* y) {
  // x, y: (outer, dim, inner) = (n); scale, bias: (dim)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int64_t d = (i / inner) % dim;
    const float s = scale ? scale[d] : 1.f, t = bias ? bias[d] : 0.f;
    y[i] = x[i] * s + t;
  }
}

// One block per d (striding over d when dim exceeds the grid); its threads stride
// over the outer * inner positions of that d and meet in a shared-memory tree.
__global__ void broadcast_reduce_kernel(int outer, int dim, int inner, const float* a, const float* b, float* out,
                                        bool accumulate) {
  // a, b: (outer, dim, inner); out: (dim)
  __shared__ double partial[kThreads];
  const int64_t positions = static_cast<int64_t>(outer) * inner;
  for (int d = static_cast<int>(blockIdx.x); d < dim; d += static_cast<int>(gridDim.x)) {
    double sum = 0;
    for (int64_t j = threadIdx.x; j < positions; j += blockDim.x) {
      const int64_t at = (j / inner * dim + d) * inner + j % inner;
      sum += b ? static_cast<double>(a[at]) * b[at] : static_cast<double>(a[at]);
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[d] = static_cast<float>(accumulate ? out[d] + partial[0] : partial[0]);
    __syncthreads();  // partial is reused for the next d
  }
}

// inner 1 with many columns and not too many rows (InnerProduct's bias over a batch):
// one thread per column walking down the rows, so a warp reads 32 neighbouring columns
// of a row at once where the block per column above would read elements `dim` apart;
// summed in double in row order. Tall matrices keep the block per column, whose threads
// share the rows.
constexpr int kColumnKernelMaxRows = 2048;

__global__ void column_reduce_kernel(int64_t dim, int outer, const float* a, const float* b, float* out,
                                     bool accumulate) {
  // a, b: (outer, dim); out: (dim)
  for (int64_t d = first_index(); d < dim; d += grid_stride()) {
    double sum = 0;
    for (int64_t j = 0; j < outer; ++j) {
      const int64_t at = j * dim + d;
      sum += b ? static_cast<double>(a[at]) * b[at] : static_cast<double>(a[at]);
    }
    out[d] = static_cast<float>(accumulate ? out[d] + sum : sum);
  }
}

__global__ void max_first_kernel(int64_t n, const float* x0, const float* x1, float* y, float* from) {  // all (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const bool first = x0[i] > x1[i];  // strict: a tie goes to bottom 1, as on the CPU
    from[i] = first ? 0.f : 1.f;
    y[i] = first ? x0[i] : x1[i];
  }
}

__global__ void max_next_kernel(int64_t n, const float* xk, int k, float* y, float* from) {  // all (n)
  for (int64_t i = first_index(); i < n; i += grid_stride())
    if (xk[i] > y[i]) {
      y[i] = xk[i];
      from[i] = static_cast<float>(k);
    }
}

__global__ void max_backward_kernel(int64_t n, const float* dy, const float* from, int k, float* dx) {  // all (n)
  for (int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = static_cast<int>(from[i]) == k ? dy[i] : 0.f;
}
}  // namespace

void broadcast_apply_gpu(const CudaContext& ctx, int outer, int dim, int inner, const float* x, const float* scale,
                         const float* bias, float* y) {
  if (dim <= 0 || inner <= 0) return;
  launch(ctx, static_cast<int64_t>(outer) * dim * inner, broadcast_apply_kernel, dim, inner, x, scale, bias, y);
}

void broadcast_reduce_gpu(const CudaContext& ctx, int outer, int dim, int inner, const float* a, const float* b,
                          float* out, bool accumulate) {
  if (dim <= 0) return;
  if (inner == 1 && dim >= kThreads && outer <= kColumnKernelMaxRows) {
    launch(ctx, dim, column_reduce_kernel, outer, a, b, out, accumulate);
    return;
  }
  const int blocks = dim < 65535 ? dim : 65535;
  broadcast_reduce_kernel<<<blocks, kThreads, 0, stream_of(ctx)>>>(outer, dim, inner, a, b, out, accumulate);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void copy_axis_part_gpu(const CudaContext& ctx, int outer, int whole_axis, int part_axis, int offset, int inner,
                        bool to_part, const float* from, float* to) {
  if (outer <= 0 || part_axis <= 0 || inner <= 0) return;
  // One strided 2-D copy: `outer` rows of part_axis * inner floats, the whole's rows
  // whole_axis * inner apart and starting `offset` * inner in, the part's packed.
  const size_t row = sizeof(float) * static_cast<size_t>(part_axis) * static_cast<size_t>(inner);
  const size_t whole_pitch = sizeof(float) * static_cast<size_t>(whole_axis) * static_cast<size_t>(inner);
  const size_t whole_start = static_cast<size_t>(offset) * static_cast<size_t>(inner);
  // A 2-D copy caps its pitches at cudaDevAttrMaxPitch (2^31 - 1 bytes on current GPUs): one
  // outer slice, or rows of the whole beyond that (2 GiB each, so few of them), are copied as
  // contiguous runs, one per row.
  constexpr size_t kMaxPitch = (size_t{1} << 31) - 1;
  if (outer == 1 || whole_pitch > kMaxPitch) {
    for (size_t o = 0; o < static_cast<size_t>(outer); ++o) {
      const size_t whole_at = o * (whole_pitch / sizeof(float)) + whole_start, part_at = o * (row / sizeof(float));
      float* dst = to_part ? to + part_at : to + whole_at;
      const float* src = to_part ? from + whole_at : from + part_at;
      CREMA_CUDA_CHECK(cudaMemcpyAsync(dst, src, row, cudaMemcpyDeviceToDevice, stream_of(ctx)));
    }
    return;
  }
  if (to_part)
    CREMA_CUDA_CHECK(cudaMemcpy2DAsync(to, row, from + whole_start, whole_pitch, row, static_cast<size_t>(outer),
                                       cudaMemcpyDeviceToDevice, stream_of(ctx)));
  else
    CREMA_CUDA_CHECK(cudaMemcpy2DAsync(to + whole_start, whole_pitch, from, row, row, static_cast<size_t>(outer),
                                       cudaMemcpyDeviceToDevice, stream_of(ctx)));
}

void eltwise_max_first_gpu(const CudaContext& ctx, int n, const float* x0, const float* x1, float* y, float* from) {
  launch(ctx, n, max_first_kernel, x0, x1, y, from);
}

void eltwise_max_next_gpu(const CudaContext& ctx, int n, const float* xk, int k, float* y, float* from) {
  launch(ctx, n, max_next_kernel, xk, k, y, from);
}

void eltwise_max_backward_gpu(const CudaContext& ctx, int n, const float* dy, const float* from, int k, float* dx) {
  launch(ctx, n, max_backward_kernel, dy, from, k, dx);
}

}  // namespace crema::cuda
