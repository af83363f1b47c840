// Pooling kernels; the window rule is PoolingLayer::window's (see pooling_layer.hpp).
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/pooling_kernels.hpp"

namespace crema::cuda {

namespace {

struct Window {
  int h0, h1, w0, w1, pool_size;
};

// Output (ph, pw)'s window clipped to the image, and AVE's divisor: the window
// clipped to the padded image only.
__device__ Window window(const PoolShape& s, int ph, int pw) {
  Window win;
  win.h0 = ph * s.stride_h - s.pad_h;
  win.w0 = pw * s.stride_w - s.pad_w;
  win.h1 = min(win.h0 + s.kernel_h, s.height + s.pad_h);
  win.w1 = min(win.w0 + s.kernel_w, s.width + s.pad_w);
  win.pool_size = (win.h1 - win.h0) * (win.w1 - win.w0);
  win.h0 = max(win.h0, 0);
  win.w0 = max(win.w0, 0);
  win.h1 = min(win.h1, s.height);
  win.w1 = min(win.w1, s.width);
  return win;
}

// The outputs whose (unclipped) windows hold row h: [*first, *last).
__device__ void outputs_covering(int h, int pad, int kernel, int stride, int pooled, int* first, int* last) {
  *first = h + pad < kernel ? 0 : (h + pad - kernel) / stride + 1;
  *last = min((h + pad) / stride + 1, pooled);
}

// MAX (with `mask`) or AVE over each output's window.
__global__ void forward_kernel(int64_t n, PoolShape s, bool max, const float* x, float* y, float* mask) {
  // x: (planes, H, W); y, mask: (planes, PH, PW); mask unused for AVE
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int pw = static_cast<int>(i % s.pooled_width);
    const int ph = static_cast<int>((i / s.pooled_width) % s.pooled_height);
    const int64_t plane = i / (static_cast<int64_t>(s.pooled_width) * s.pooled_height);
    const float* xp = x + plane * s.height * s.width;  // (H, W)
    const Window win = window(s, ph, pw);
    const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
    if (max) {
      int best = empty ? -1 : win.h0 * s.width + win.w0;
      float best_value = empty ? 0.f : xp[best];
      for (int h = win.h0; h < win.h1; ++h)
        for (int w = win.w0; w < win.w1; ++w) {
          const float v = xp[h * s.width + w];
          if (v > best_value) {  // strict: the first pixel wins ties, as on the CPU
            best = h * s.width + w;
            best_value = v;
          }
        }
      y[i] = best_value;
      mask[i] = static_cast<float>(best);
    } else {
      float sum = 0.f;
      for (int h = win.h0; h < win.h1; ++h)
        for (int w = win.w0; w < win.w1; ++w) sum += xp[h * s.width + w];
      y[i] = empty ? 0.f : sum / static_cast<float>(win.pool_size);
    }
  }
}

// Gathers, for each bottom element, the gradient of the outputs whose windows hold
// it: MAX where the mask names it, AVE divided by each window's divisor.
__global__ void backward_kernel(int64_t n, PoolShape s, bool max, const float* dy, const float* mask, float* dx) {
  // dy, mask: (planes, PH, PW); dx: (planes, H, W); mask unused for AVE
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int w = static_cast<int>(i % s.width);
    const int h = static_cast<int>((i / s.width) % s.height);
    const int64_t plane = i / (static_cast<int64_t>(s.width) * s.height);
    const int64_t out_base = plane * s.pooled_height * s.pooled_width;
    int ph0, ph1, pw0, pw1;
    outputs_covering(h, s.pad_h, s.kernel_h, s.stride_h, s.pooled_height, &ph0, &ph1);
    outputs_covering(w, s.pad_w, s.kernel_w, s.stride_w, s.pooled_width, &pw0, &pw1);
    const int self = h * s.width + w;
    float g = 0.f;
    // Every window counted here holds (h, w) after clipping too, since h < H <= H + pad.
    for (int ph = ph0; ph < ph1; ++ph)
      for (int pw = pw0; pw < pw1; ++pw) {
        const int64_t o = out_base + ph * s.pooled_width + pw;
        if (!max)
          g += dy[o] / static_cast<float>(window(s, ph, pw).pool_size);
        else if (static_cast<int>(mask[o]) == self)
          g += dy[o];
      }
    dx[i] = g;
  }
}

int64_t top_count(const PoolShape& s) { return static_cast<int64_t>(s.planes) * s.pooled_height * s.pooled_width; }
int64_t bottom_count(const PoolShape& s) { return static_cast<int64_t>(s.planes) * s.height * s.width; }
}  // namespace

void max_pool_forward(const CudaContext& ctx, const PoolShape& s, const float* x, float* y, float* mask) {
  launch(ctx, top_count(s), forward_kernel, s, true, x, y, mask);
}

void max_pool_backward(const CudaContext& ctx, const PoolShape& s, const float* dy, const float* mask, float* dx) {
  launch(ctx, bottom_count(s), backward_kernel, s, true, dy, mask, dx);
}

void ave_pool_forward(const CudaContext& ctx, const PoolShape& s, const float* x, float* y) {
  launch(ctx, top_count(s), forward_kernel, s, false, x, y, static_cast<float*>(nullptr));
}

void ave_pool_backward(const CudaContext& ctx, const PoolShape& s, const float* dy, float* dx) {
  launch(ctx, bottom_count(s), backward_kernel, s, false, dy, static_cast<const float*>(nullptr), dx);
}

}  // namespace crema::cuda
