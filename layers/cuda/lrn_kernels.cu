// LRN kernels (see lrn_layer.hpp for the math).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/lrn_kernels.hpp"

namespace crema::cuda {

namespace {
int64_t count_of(const LrnShape& s) { return static_cast<int64_t>(s.num) * s.channels * s.height * s.width; }

// The sum of in (or of in², with `square`) over element i's window, zero outside.
// in: (N, C, H, W)
__device__ float window_sum(const LrnShape& s, const float* in, int64_t i, bool square) {
  const int half = (s.local_size - 1) / 2;
  const int w = static_cast<int>(i % s.width);
  const int h = static_cast<int>((i / s.width) % s.height);
  const int c = static_cast<int>((i / (static_cast<int64_t>(s.width) * s.height)) % s.channels);
  float sum = 0.f;
  if (s.across_channels) {
    const int64_t plane = static_cast<int64_t>(s.height) * s.width;
    const float* base = in + i - c * plane;  // channel 0 at (n, h, w); stride plane
    for (int c2 = max(0, c - half); c2 <= min(s.channels - 1, c + half); ++c2) {
      const float v = base[c2 * plane];
      sum += square ? v * v : v;
    }
  } else {
    const float* base = in + i - (static_cast<int64_t>(h) * s.width + w);  // (H, W) of element i
    for (int h2 = max(0, h - half); h2 <= min(s.height - 1, h + half); ++h2)
      for (int w2 = max(0, w - half); w2 <= min(s.width - 1, w + half); ++w2) {
        const float v = base[h2 * s.width + w2];
        sum += square ? v * v : v;
      }
  }
  return sum;
}

__global__ void forward_kernel(int64_t n, LrnShape s, const float* x, float* scale, float* y) {
  // x, scale, y: (N, C, H, W)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float sc = s.shift + s.coef * window_sum(s, x, i, true);
    scale[i] = sc;
    y[i] = x[i] * powf(sc, -s.beta);
  }
}

__global__ void ratio_kernel(int64_t n, float beta, const float* dy, const float* x, const float* scale, float* ratio) {
  // all: (N, C, H, W). y = x scale^-beta from x, not the top, which a later in-place layer
  // may have rewritten (as on the CPU).
  for (int64_t i = first_index(); i < n; i += grid_stride()) ratio[i] = dy[i] * x[i] * powf(scale[i], -beta) / scale[i];
}

__global__ void backward_kernel(int64_t n, LrnShape s, const float* x, const float* dy, const float* scale,
                                const float* ratio, float* dx) {
  // all: (N, C, H, W)
  const float cross = 2.f * s.coef * s.beta;
  for (int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = dy[i] * powf(scale[i], -s.beta) - cross * x[i] * window_sum(s, ratio, i, false);
}
}  // namespace

void lrn_forward(const CudaContext& ctx, const LrnShape& s, const float* x, float* scale, float* y) {
  launch(ctx, count_of(s), forward_kernel, s, x, scale, y);
}

void lrn_backward(const CudaContext& ctx, const LrnShape& s, const float* x, const float* dy, const float* scale,
                  float* ratio, float* dx) {
  const int64_t n = count_of(s);
  // Two launches: every dx reads the ratios of its whole window.
  launch(ctx, n, ratio_kernel, s.beta, dy, x, scale, ratio);
  launch(ctx, n, backward_kernel, s, x, dy, scale, ratio, dx);
}

}  // namespace crema::cuda
