// One LSTM cell step for one (stream n, unit d), written once for the CPU loops and the
// CUDA kernels (plain C++17, compiled by nvcc as host+device code). Caffe's LSTMUnit:
// the gate pre-activations of stream n are one row of 4H values in the order
// i, f, o, g, and cont (0 or 1) flushes the previous cell at a sequence start:
//   i = σ(x_i), f = cont σ(x_f), o = σ(x_o), g = tanh(x_g)
//   c = f c_prev + i g,   h = o tanh(c)
// σ(x) is 0.5 tanh(x/2) + 0.5, as crema's Sigmoid (layers/sigmoid_function.hpp), which
// cannot overflow (Caffe's LSTMUnit writes 1/(1 + e^-x): the same to within 3e-8). The
// tanh is a parameter: the device's tanhf in the kernels, HostTanh on the CPU, where
// glibc's tanhf (a call per element) took most of an LSTM's time.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define CREMA_HOST_DEVICE __host__ __device__
#else
#define CREMA_HOST_DEVICE
#endif

namespace crema::lstm {

// tanh within 1.5 ulp of the exact value (tests/test_recurrent_layers.cpp checks every
// 257th float in [0, 12] against double: 1.25 at worst), with no calls and no branches, so the loops
// over it vectorise. |x| < 0.625: an odd polynomial fitted to tanh; above:
// 1 − 2/(e^{2|x|} + 1) with e^y from a Cody–Waite reduction y = n ln2 + r, a degree-7
// polynomial for e^r and 2^n built in the exponent bits. y is capped at 40, where the
// result is 1 in float; NaN stays NaN.
inline float host_tanh(float x) {
  const float a = fabsf(x);
  const float u = x * x;
  const float q = (((-0.005703943f * u + 0.020637775f) * u - 0.05373913f) * u + 0.13331431f) * u - 0.33333281f;
  const float small = copysignf(x + x * u * q, x);  // -0 stays -0

  const float y = a * 2.f < 40.f ? a * 2.f : (a * 2.f == a * 2.f ? 40.f : a * 2.f);  // min(2|x|, 40), NaN kept
  const float magic = 12582912.f;  // 1.5 · 2^23: adding it rounds to an integer in the low mantissa bits
  const float t = y * 1.44269504f + magic;
  const float n = t - magic;
  const float r = (y - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.f / 40320.f;
  p = p * r + 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  uint32_t t_bits, magic_bits;
  memcpy(&t_bits, &t, 4);
  memcpy(&magic_bits, &magic, 4);
  // 2^n: n in [0, 58] for every number (unsigned, so a NaN's bits wrap instead of overflowing).
  const uint32_t scale_bits = (t_bits - magic_bits + 127u) << 23;
  float scale;
  memcpy(&scale, &scale_bits, 4);
  const float big = 1.f - 2.f / (p * scale + 1.f);
  return a < 0.625f ? small : copysignf(big, x);
}

struct HostTanh {
  float operator()(float x) const { return host_tanh(x); }
};

template <typename Tanh>
CREMA_HOST_DEVICE inline float logistic(Tanh tanh_of, float x) {
  return 0.5f * tanh_of(0.5f * x) + 0.5f;
}

struct Gates {
  float i, s, f, o, g;  // s: the forget gate before cont, f = cont s
};

// The gates of element (n, d). x: (N, 4H); cont: (N)
template <typename Tanh>
CREMA_HOST_DEVICE inline Gates gates(Tanh tanh_of, int hidden, int n, int d, const float* x, const float* cont) {
  const float* row = x + static_cast<long>(n) * 4 * hidden;  // (4H): stream n's i, f, o, g
  Gates a;
  a.i = logistic(tanh_of, row[d]);
  a.s = logistic(tanh_of, row[hidden + d]);
  // cont == 0 gives f = 0 even for a NaN or Inf forget input (Caffe's rule). Both sides
  // of each choice are computed (selects, not branches, so the host loops vectorise).
  const float kept = cont[n] * a.s;
  a.f = cont[n] == 0.f ? 0.f : kept;
  a.o = logistic(tanh_of, row[2 * hidden + d]);
  a.g = tanh_of(row[3 * hidden + d]);
  return a;
}

// Forward for element (n, d) of an (N, H) state. c_prev, c, h: (N, H); x: (N, 4H); cont: (N)
template <typename Tanh>
CREMA_HOST_DEVICE inline void unit_forward(Tanh tanh_of, int hidden, int n, int d, const float* c_prev, const float* x,
                                           const float* cont, float* c, float* h) {
  const Gates a = gates(tanh_of, hidden, n, d, x, cont);
  const long at = static_cast<long>(n) * hidden + d;
  const float cell = a.f * c_prev[at] + a.i * a.g;
  c[at] = cell;
  h[at] = a.o * tanh_of(cell);
}

// Backward for element (n, d): from the gradients dc and dh of this step's c and h,
// the gradient of the four pre-activations and of c_prev. c is recomputed from the
// inputs rather than read back, so a later layer writing on the top cannot change it.
// The forget gradient is cont σ'(x_f) (Caffe writes f(1 - f), equal for cont 0 or 1).
// dc_prev may alias dc (each element is read before it is written).
// c_prev, dc, dh, dc_prev: (N, H); x, dx: (N, 4H); cont: (N)
template <typename Tanh>
CREMA_HOST_DEVICE inline void unit_backward(Tanh tanh_of, int hidden, int n, int d, const float* c_prev,
                                            const float* x, const float* cont, const float* dc, const float* dh,
                                            float* dx, float* dc_prev) {
  const Gates a = gates(tanh_of, hidden, n, d, x, cont);
  float* drow = dx + static_cast<long>(n) * 4 * hidden;  // (4H)
  const long at = static_cast<long>(n) * hidden + d;
  const float cp = c_prev[at];
  const float tanh_c = tanh_of(a.f * cp + a.i * a.g);
  const float dh_at = dh[at];
  const float dcell = dc[at] + dh_at * a.o * (1.f - tanh_c * tanh_c);
  drow[d] = dcell * a.g * a.i * (1.f - a.i);
  const float df = dcell * cp * cont[n] * a.s * (1.f - a.s);
  drow[hidden + d] = cont[n] == 0.f ? 0.f : df;  // the forward's rule: no forget gate at a start
  drow[2 * hidden + d] = dh_at * tanh_c * a.o * (1.f - a.o);
  drow[3 * hidden + d] = dcell * a.i * (1.f - a.g * a.g);
  dc_prev[at] = dcell * a.f;
}

}  // namespace crema::lstm
