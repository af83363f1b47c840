// The array operations the recurrent layers' time loops are written in, on the host
// (OpenBLAS and plain loops) or on the context's CUDA device (cuBLAS and kernels), so
// that each loop is written once and runs the same steps on both. Pointers come from
// data()/diff() and belong to the device the math runs on.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "engine/blob.hpp"
#include "engine/context.hpp"

namespace crema {

class SequenceMath {
 public:
  virtual ~SequenceMath() = default;
  // The math for where ctx runs: the CPU, or its CUDA device.
  static std::unique_ptr<SequenceMath> for_context(Context& ctx);

  virtual bool gpu() const = 0;
  const float* data(const Blob& b) const { return gpu() ? b.gpu_data() : b.cpu_data(); }
  const float* diff(const Blob& b) const { return gpu() ? b.gpu_diff() : b.cpu_diff(); }
  float* mutable_data(Blob& b) const { return gpu() ? b.mutable_gpu_data() : b.mutable_cpu_data(); }
  float* mutable_diff(Blob& b) const { return gpu() ? b.mutable_gpu_diff() : b.mutable_cpu_diff(); }

  // C (M, N) = alpha op(A) op(B) + beta C, row-major (cpu_gemm's contract).
  virtual void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b,
                    float beta, float* c) const = 0;
  virtual void set(int n, float value, float* y) const = 0;         // y: (n)
  virtual void copy(int n, const float* x, float* y) const = 0;     // x, y: (n)
  virtual void add(int n, const float* x, float* y) const = 0;      // y += x; x, y: (n)
  // y_r = s_r x_r for each row r; y may alias x. s: (rows); x, y: (rows, cols)
  virtual void scale_rows(int rows, int cols, const float* s, const float* x, float* y) const = 0;
  // y_r += b for each row r. b: (cols); y: (rows, cols)
  virtual void add_to_rows(int rows, int cols, const float* b, float* y) const = 0;
  // out_j += Σ_r a_rj, summed in double. a: (rows, cols); out: (cols)
  virtual void add_column_sums(int rows, int cols, const float* a, float* out) const = 0;
  // y = tanh x; dx = dy (1 − y²); dx may alias dy. All: (n)
  virtual void tanh_forward(int n, const float* x, float* y) const = 0;
  virtual void tanh_backward(int n, const float* y, const float* dy, float* dx) const = 0;
  // layers/lstm_unit_math.hpp's step over all (N, H) elements.
  // c_prev, c, h, dc, dh, dc_prev: (N, H), dc_prev may alias dc; x, dx: (N, 4H); cont: (N)
  virtual void lstm_unit_forward(int num, int hidden, const float* c_prev, const float* x, const float* cont,
                                 float* c, float* h) const = 0;
  virtual void lstm_unit_backward(int num, int hidden, const float* c_prev, const float* x, const float* cont,
                                  const float* dc, const float* dh, float* dx, float* dc_prev) const = 0;
  // The position of the first of x's n values outside [0, 1] (NaN included), with the value;
  // position -1 when there is none. A GPU's waits for the stream. x: (n); scratch: (2)
  virtual std::pair<int64_t, float> first_outside_unit(int n, const float* x, float* scratch) const = 0;
};

}  // namespace crema
