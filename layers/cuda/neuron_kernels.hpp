// Host-callable launchers for the element-wise (neuron) layers' device kernels: ReLU,
// Sigmoid, TanH, AbsVal, BNLL, ELU, Swish, Clip, Exp, Log, Power, Threshold, PReLU and
// Dropout. Each computes exactly what the layer's CPU loop computes (same formula,
// same order of operations), on the context's stream. Every pointer is a device
// pointer; n is the element count of the bottom. dx may alias dy and y may alias x
// (in-place layers), since each element is read before it is written by one thread.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

// y = x > 0 ? x : slope x.  dx = dy (y > 0 ? 1 : slope), read from the top as on the CPU.
void relu_forward(const CudaContext& ctx, int64_t n, float slope, const float* x, float* y);  // x, y: (n)
void relu_backward(const CudaContext& ctx, int64_t n, float slope, const float* y, const float* dy,
                   float* dx);  // y, dy, dx: (n)

// y = 0.5 tanh(x / 2) + 0.5.  dx = dy y (1 - y).
void sigmoid_forward(const CudaContext& ctx, int64_t n, const float* x, float* y);                  // x, y: (n)
void sigmoid_backward(const CudaContext& ctx, int64_t n, const float* y, const float* dy, float* dx);  // (n) each

// y = tanh x.  dx = dy (1 - y^2).
void tanh_forward(const CudaContext& ctx, int64_t n, const float* x, float* y);                  // x, y: (n)
void tanh_backward(const CudaContext& ctx, int64_t n, const float* y, const float* dy, float* dx);  // (n) each

// y = |x|.  dx = dy sign(x), with x as it was at forward.
void absval_forward(const CudaContext& ctx, int64_t n, const float* x, float* y);                  // x, y: (n)
void absval_backward(const CudaContext& ctx, int64_t n, const float* x, const float* dy, float* dx);  // (n) each

// y = log(1 + e^x) (overflow-safe).  dx = dy e / (e + 1), e = exp(min(x, threshold)).
void bnll_forward(const CudaContext& ctx, int64_t n, const float* x, float* y);  // x, y: (n)
void bnll_backward(const CudaContext& ctx, int64_t n, float threshold, const float* x, const float* dy,
                   float* dx);  // (n) each

// y = max(x, 0) + alpha (e^min(x, 0) - 1).  dx = x > 0 ? dy : dy (y + alpha).
void elu_forward(const CudaContext& ctx, int64_t n, float alpha, const float* x, float* y);  // x, y: (n)
void elu_backward(const CudaContext& ctx, int64_t n, float alpha, const float* x, const float* y, const float* dy,
                  float* dx);  // (n) each; x may be y when in place

// s = sigmoid(beta x), y = x s.  dx = dy (beta y + s (1 - beta y)).
void swish_forward(const CudaContext& ctx, int64_t n, float beta, const float* x, float* s,
                   float* y);  // x, s, y: (n)
void swish_backward(const CudaContext& ctx, int64_t n, float beta, const float* s, const float* y, const float* dy,
                    float* dx);  // (n) each

// y = max(lo, min(x, hi)).  dx = dy (lo <= x <= hi ? 1 : 0).
void clip_forward(const CudaContext& ctx, int64_t n, float lo, float hi, const float* x, float* y);  // (n) each
void clip_backward(const CudaContext& ctx, int64_t n, float lo, float hi, const float* x, const float* dy,
                   float* dx);  // (n) each

// y = outer e^(inner x).  dx = dy y inner.
void exp_forward(const CudaContext& ctx, int64_t n, float inner, float outer, const float* x, float* y);  // (n)
void exp_backward(const CudaContext& ctx, int64_t n, float inner, const float* y, const float* dy,
                  float* dx);  // (n) each

// y = base_scale ln(scale x + shift).  dx = dy numerator / (scale x + shift).
void log_forward(const CudaContext& ctx, int64_t n, float base_scale, float scale, float shift, const float* x,
                 float* y);  // (n) each
void log_backward(const CudaContext& ctx, int64_t n, float numerator, float scale, float shift, const float* x,
                  const float* dy, float* dx);  // (n) each

// y = (shift + scale x)^power.  dx = dy diff_scale (shift + scale x)^(power - 1).
void power_forward(const CudaContext& ctx, int64_t n, float power, float scale, float shift, const float* x,
                   float* y);  // (n) each
void power_backward(const CudaContext& ctx, int64_t n, float power, float scale, float shift, float diff_scale,
                    const float* x, const float* dy, float* dx);  // (n) each

// y = x > threshold ? 1 : 0 (its gradient is zero: gpu_set).
void threshold_forward(const CudaContext& ctx, int64_t n, float threshold, const float* x, float* y);  // (n)

// PReLU on a bottom seen as (outer, channels, dim); channel_shared is channels = 1
// with dim = C * spatial. y = x > 0 ? x : a_c x.
void prelu_forward(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* a, const float* x,
                   float* y);  // a: (channels); x, y: (n)
// dx = x > 0 ? dy : a_c dy.
void prelu_backward_input(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* a,
                          const float* x, const float* dy, float* dx);  // a: (channels); x, dy, dx: (n)
// da_c += sum of dy x over the elements of channel c with x <= 0: one block per
// channel reduces its elements in shared memory, so no atomics are needed.
void prelu_backward_slope(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* x,
                          const float* dy, float* da);  // x, dy: (n); da: (channels)

// Dropout's mask is not stored: element i is kept when hash(seed, i) / 2^24 < keep,
// a counter-based draw (splitmix64 of seed and index), so forward and backward
// recompute the same mask from the seed the forward drew. y = x mask scale; with
// keep = 1 every element is kept (TEST: y = x scale).
void dropout_forward(const CudaContext& ctx, int64_t n, uint64_t seed, float keep, float scale, const float* x,
                     float* y);  // x, y: (n)
void dropout_backward(const CudaContext& ctx, int64_t n, uint64_t seed, float keep, float scale, const float* dy,
                      float* dx);  // dy, dx: (n)

}  // namespace crema::cuda
