// The loops every element-wise layer runs, written once: the layer supplies only its
// function of one value. Both work in place (top == bottom, diffs aliased too).
#pragma once

#include "engine/blob.hpp"
#include "engine/math.hpp"

namespace crema {

// y_i = f(x_i).
template <typename F>
void map_forward(const Blob& bottom, Blob& top, F f) {
  const int n = bottom.count();
  const float* x = bottom.cpu_data();  // x: (n)
  float* y = top.mutable_cpu_data();   // y: (n), may alias x
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) y[i] = f(x[i]);
}

// dx_i = dy_i * dydx(v_i), the derivative taken from values v (n) that backward can
// still read: the top for layers whose derivative is a function of their output
// (Exp, Sigmoid, TanH), the kept input otherwise (see kept_input.hpp).
template <typename F>
void map_backward(const float* v, const Blob& top, Blob& bottom, F dydx) {
  const int n = bottom.count();
  const float* dy = top.cpu_diff();       // dy: (n)
  float* dx = bottom.mutable_cpu_diff();  // dx: (n), may alias dy
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) dx[i] = dy[i] * dydx(v[i]);
}

}  // namespace crema
