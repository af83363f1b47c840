// BatchNorm kernels (see batch_norm_layer.hpp for the math).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/batch_norm_kernels.hpp"

namespace crema::cuda {

namespace {
// The block reductions halve kThreads (grid.hpp), a power of two.
unsigned channel_blocks(int channels) { return static_cast<unsigned>(channels < 65535 ? channels : 65535); }

// Sums a and b over the block; thread 0 gets the totals. buf: (2, kThreads) shared.
__device__ void block_sum2(double* buf, double& a, double& b) {
  buf[threadIdx.x] = a;
  buf[kThreads + threadIdx.x] = b;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) {
      buf[threadIdx.x] += buf[threadIdx.x + stride];
      buf[kThreads + threadIdx.x] += buf[kThreads + threadIdx.x + stride];
    }
    __syncthreads();
  }
  a = buf[0];
  b = buf[kThreads];
  __syncthreads();  // buf is reused by the next call
}

// Element k (of outer * inner) of channel c in an (N, C, S) array.
__device__ int64_t at(const BatchNormShape& s, int64_t c, int64_t k) {
  const int64_t o = k / s.inner, j = k % s.inner;
  return (o * s.channels + c) * s.inner + j;
}

__global__ void batch_stats_kernel(BatchNormShape s, const float* x, double* mean, float* var, float* mean_blob,
                                   float* var_blob, float* inv_std) {
  // x: (N, C, S); mean, var, mean_blob, var_blob, inv_std: (C)
  __shared__ double buf[2 * kThreads];
  const int64_t m = static_cast<int64_t>(s.outer) * s.inner;  // values per channel
  for (int64_t c = blockIdx.x; c < s.channels; c += gridDim.x) {  // 64-bit: no wrap near INT_MAX
    double sum = 0, unused = 0;
    for (int64_t k = threadIdx.x; k < m; k += kThreads) sum += x[at(s, c, k)];
    block_sum2(buf, sum, unused);
    const double mu = m > 0 ? sum / static_cast<double>(m) : 0.0;
    // Two passes: the deviations from the mean, as the CPU reference does.
    double sq = 0;
    unused = 0;
    for (int64_t k = threadIdx.x; k < m; k += kThreads) {
      const double d = x[at(s, c, k)] - mu;
      sq += d * d;
    }
    block_sum2(buf, sq, unused);
    if (threadIdx.x == 0) {
      const double v = m > 0 ? sq / static_cast<double>(m) : 0.0;
      const double correction = m > 1 ? static_cast<double>(m) / static_cast<double>(m - 1) : 1.0;
      const float maf = s.moving_average_fraction;
      mean[c] = mu;
      var[c] = static_cast<float>(v);
      mean_blob[c] = static_cast<float>(mu + maf * mean_blob[c]);
      var_blob[c] = static_cast<float>(correction * v + maf * var_blob[c]);
      inv_std[c] = static_cast<float>(1.0 / sqrt(v + static_cast<double>(s.eps)));
    }
  }
}

__global__ void update_factor_kernel(float maf, float* factor) {  // factor: (1)
  factor[0] = factor[0] * maf + 1.f;
}

__global__ void global_stats_kernel(BatchNormShape s, const float* mean_blob, const float* var_blob,
                                    const float* factor, double* mean, float* inv_std) {
  // mean_blob, var_blob, mean, inv_std: (C); factor: (1)
  const double scale = factor[0] == 0.f ? 0.0 : 1.0 / factor[0];
  // 64-bit: a channel count near INT_MAX would wrap an int past the last one.
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < s.channels;
       c += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    mean[c] = mean_blob[c] * scale;
    inv_std[c] = static_cast<float>(1.0 / sqrt(var_blob[c] * scale + static_cast<double>(s.eps)));
  }
}

__global__ void normalize_kernel(int64_t n, BatchNormShape s, const float* x, const double* mean, const float* inv_std,
                                 float* y, float* x_norm) {
  // x, y, x_norm: (N, C, S); mean, inv_std: (C)
  // In double, as the CPU: x - mean in float loses |mean| 2^-24 / std, large for offset inputs.
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int c = static_cast<int>((i / s.inner) % s.channels);
    const float v = static_cast<float>((x[i] - mean[c]) * static_cast<double>(inv_std[c]));
    y[i] = v;
    if (x_norm) x_norm[i] = v;
  }
}

__global__ void backward_sums_kernel(BatchNormShape s, const float* x_norm, const float* dy, double* sums) {
  // x_norm, dy: (N, C, S); sums: (2, C) = mean(dy), mean(dy x_norm)
  __shared__ double buf[2 * kThreads];
  const int64_t m = static_cast<int64_t>(s.outer) * s.inner;
  for (int64_t c = blockIdx.x; c < s.channels; c += gridDim.x) {  // 64-bit: no wrap near INT_MAX
    double sum_dy = 0, sum_dy_y = 0;
    for (int64_t k = threadIdx.x; k < m; k += kThreads) {
      const int64_t i = at(s, c, k);
      sum_dy += dy[i];
      sum_dy_y += static_cast<double>(dy[i]) * x_norm[i];
    }
    block_sum2(buf, sum_dy, sum_dy_y);
    if (threadIdx.x == 0) {
      sums[c] = m > 0 ? sum_dy / static_cast<double>(m) : 0.0;
      sums[s.channels + c] = m > 0 ? sum_dy_y / static_cast<double>(m) : 0.0;
    }
  }
}

__global__ void backward_kernel(int64_t n, BatchNormShape s, bool global, const float* x_norm, const float* dy,
                                const float* inv_std, const double* sums, float* dx) {
  // x_norm, dy, dx: (N, C, S); inv_std: (C); sums: (2, C)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int c = static_cast<int>((i / s.inner) % s.channels);
    dx[i] = global ? dy[i] * inv_std[c]
                   : static_cast<float>((dy[i] - sums[c] - x_norm[i] * sums[s.channels + c]) *
                                        static_cast<double>(inv_std[c]));
  }
}

int64_t count_of(const BatchNormShape& s) { return static_cast<int64_t>(s.outer) * s.channels * s.inner; }
}  // namespace

void batch_norm_batch_stats(const CudaContext& ctx, const BatchNormShape& s, const float* x, double* mean, float* var,
                            float* mean_blob, float* var_blob, float* factor, float* inv_std) {
  if (s.channels <= 0) return;
  batch_stats_kernel<<<channel_blocks(s.channels), kThreads, 0, stream_of(ctx)>>>(s, x, mean, var, mean_blob, var_blob,
                                                                                  inv_std);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  update_factor_kernel<<<1, 1, 0, stream_of(ctx)>>>(s.moving_average_fraction, factor);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void batch_norm_global_stats(const CudaContext& ctx, const BatchNormShape& s, const float* mean_blob,
                             const float* var_blob, const float* factor, double* mean, float* inv_std) {
  if (s.channels <= 0) return;
  global_stats_kernel<<<blocks_for(s.channels), kThreads, 0, stream_of(ctx)>>>(s, mean_blob, var_blob, factor, mean,
                                                                               inv_std);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void batch_norm_normalize(const CudaContext& ctx, const BatchNormShape& s, const float* x, const double* mean,
                          const float* inv_std, float* y, float* x_norm) {
  launch(ctx, count_of(s), normalize_kernel, s, x, mean, inv_std, y, x_norm);
}

void batch_norm_backward(const CudaContext& ctx, const BatchNormShape& s, bool global, const float* x_norm,
                         const float* dy, const float* inv_std, double* sums, float* dx) {
  const int64_t n = count_of(s);
  if (n <= 0) return;
  // The sums are taken before any dx is written: dx may alias dy.
  if (!global) {
    backward_sums_kernel<<<channel_blocks(s.channels), kThreads, 0, stream_of(ctx)>>>(s, x_norm, dy, sums);
    CREMA_CUDA_LAUNCHED(stream_of(ctx));
  }
  launch(ctx, n, backward_kernel, s, global, x_norm, dy, inv_std, sums, dx);
}

}  // namespace crema::cuda
