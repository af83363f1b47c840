#include "layers/sequence_math.hpp"

#include <cmath>
#include <map>
#include <tuple>
#include <vector>

#include "engine/math.hpp"
#include "layers/axis_broadcast.hpp"
#include "layers/lstm_unit_math.hpp"
#include "layers/onednn/onednn_gemm.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/blas_kernels.hpp"
#include "layers/cuda/catalog_kernels.hpp"
#include "layers/cuda/neuron_kernels.hpp"
#include "layers/cuda/recurrent_kernels.hpp"
#endif

namespace crema {

namespace {

// The LSTM step costs five tanh per element (~50 ns), so it pays to share a step of
// a few thousand elements between threads, far below the cheap loops' threshold.
constexpr long kUnitParallelMin = 2048;

// The element loops are bound by vector arithmetic, so on x86-64 they are compiled for
// SSE2 (crema's portable baseline), AVX2 and AVX-512F, picked at load time by the CPU's
// features. The file is compiled without contracting a*b + c into FMA (CMakeLists.txt),
// so the variants compute the same bits (the matrix products, oneDNN's and OpenBLAS's,
// still pick their kernels by CPU).
#if defined(__x86_64__)
#define CREMA_VECTOR_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define CREMA_VECTOR_CLONES
#endif

CREMA_VECTOR_CLONES void unit_forward_rows(int num, int hidden, const float* c_prev, const float* x, const float* cont,
                                           float* c, float* h) {
#pragma omp parallel for if (static_cast<long>(num) * hidden >= kUnitParallelMin)
  for (int n = 0; n < num; ++n)
#pragma omp simd
    for (int d = 0; d < hidden; ++d) lstm::unit_forward(lstm::HostTanh{}, hidden, n, d, c_prev, x, cont, c, h);
}

CREMA_VECTOR_CLONES void unit_backward_rows(int num, int hidden, const float* c_prev, const float* x,
                                            const float* cont, const float* dc, const float* dh, float* dx,
                                            float* dc_prev) {
#pragma omp parallel for if (static_cast<long>(num) * hidden >= kUnitParallelMin)
  for (int n = 0; n < num; ++n)
#pragma omp simd
    for (int d = 0; d < hidden; ++d)
      lstm::unit_backward(lstm::HostTanh{}, hidden, n, d, c_prev, x, cont, dc, dh, dx, dc_prev);
}

CREMA_VECTOR_CLONES void tanh_all(int n, const float* x, float* y) {
#pragma omp parallel for simd if (n >= kUnitParallelMin)
  for (int i = 0; i < n; ++i) y[i] = lstm::host_tanh(x[i]);
}

class CpuSequenceMath final : public SequenceMath {
 public:
  bool gpu() const override { return false; }
  // On oneDNN's matmul, built once per shape (the time loops repeat a few shapes many
  // times; OpenBLAS pays its threading set-up on each of these small products), or
  // OpenBLAS where oneDNN cannot build one.
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) const override {
    if (alpha == 1.f && (beta == 0.f || beta == 1.f) && m > 0 && n > 0 && k > 0) {
      const auto key = std::make_tuple(trans_a, trans_b, m, n, k, beta == 1.f);
      auto it = products_.find(key);
      if (it == products_.end()) {
        // A few shapes per sequence length: batches of ever new lengths must not grow it forever.
        if (products_.size() >= kMaxProducts) products_.clear();
        auto product = std::make_unique<onednn::Gemm>();
        if (!product->prepare(trans_a, trans_b, m, n, k, beta == 1.f, false).empty()) product.reset();
        it = products_.emplace(key, std::move(product)).first;
      }
      if (it->second) {
        it->second->run(a, b, c);
        return;
      }
    }
    cpu_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  }
  void set(int n, float value, float* y) const override { cpu_set(n, value, y); }
  void copy(int n, const float* x, float* y) const override { cpu_copy(n, x, y); }
  void add(int n, const float* x, float* y) const override { cpu_axpy(n, 1.f, x, y); }
  // The host twin of the GPU's broadcast_apply_gpu call: AxisBroadcast (outer 1, dim
  // rows, inner cols).
  void scale_rows(int rows, int cols, const float* s, const float* x, float* y) const override {
    AxisBroadcast{1, rows, cols}.apply(x, s, nullptr, y);
  }
  // The bias rows and column sums have inner 1, where AxisBroadcast would go element by
  // element and column by column through memory; these go row by row (as InnerProduct's).
  void add_to_rows(int rows, int cols, const float* b, float* y) const override {
    for (int r = 0; r < rows; ++r) {
      float* row = y + static_cast<long>(r) * cols;  // (cols)
      for (int j = 0; j < cols; ++j) row[j] += b[j];
    }
  }
  void add_column_sums(int rows, int cols, const float* a, float* out) const override {
    std::vector<double> sum(static_cast<size_t>(cols), 0.0);  // row by row, in memory order
    for (int r = 0; r < rows; ++r) {
      const float* row = a + static_cast<long>(r) * cols;  // (cols)
      for (int j = 0; j < cols; ++j) sum[static_cast<size_t>(j)] += row[j];
    }
    for (int j = 0; j < cols; ++j) out[j] += static_cast<float>(sum[static_cast<size_t>(j)]);
  }
  void tanh_forward(int n, const float* x, float* y) const override { tanh_all(n, x, y); }
  void tanh_backward(int n, const float* y, const float* dy, float* dx) const override {
    for (int i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
  }
  void lstm_unit_forward(int num, int hidden, const float* c_prev, const float* x, const float* cont, float* c,
                         float* h) const override {
    unit_forward_rows(num, hidden, c_prev, x, cont, c, h);
  }
  void lstm_unit_backward(int num, int hidden, const float* c_prev, const float* x, const float* cont,
                          const float* dc, const float* dh, float* dx, float* dc_prev) const override {
    unit_backward_rows(num, hidden, c_prev, x, cont, dc, dh, dx, dc_prev);
  }
  std::pair<int64_t, float> first_outside_unit(int n, const float* x, float*) const override {
    for (int i = 0; i < n; ++i)
      if (!(x[i] >= 0.f && x[i] <= 1.f)) return {i, x[i]};
    return {-1, 0.f};
  }

 private:
  using Shape = std::tuple<bool, bool, int, int, int, bool>;  // trans_a, trans_b, m, n, k, accumulate
  static constexpr size_t kMaxProducts = 64;
  mutable std::map<Shape, std::unique_ptr<onednn::Gemm>> products_;  // null where oneDNN declined
};

#ifdef CREMA_WITH_CUDA
class GpuSequenceMath final : public SequenceMath {
 public:
  explicit GpuSequenceMath(const cuda::CudaContext& ctx) : ctx_(ctx) {}
  bool gpu() const override { return true; }
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) const override {
    cuda::gpu_gemm(ctx_, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  }
  void set(int n, float value, float* y) const override { cuda::gpu_set(ctx_, n, value, y); }
  void copy(int n, const float* x, float* y) const override { cuda::gpu_copy(ctx_, n, x, y); }
  void add(int n, const float* x, float* y) const override { cuda::gpu_axpy(ctx_, n, 1.f, x, y); }
  void scale_rows(int rows, int cols, const float* s, const float* x, float* y) const override {
    cuda::broadcast_apply_gpu(ctx_, 1, rows, cols, x, s, nullptr, y);  // (outer 1, dim rows, inner cols)
  }
  void add_to_rows(int rows, int cols, const float* b, float* y) const override {
    cuda::broadcast_apply_gpu(ctx_, rows, cols, 1, y, nullptr, b, y);  // (outer rows, dim cols, inner 1)
  }
  void add_column_sums(int rows, int cols, const float* a, float* out) const override {
    cuda::broadcast_reduce_gpu(ctx_, rows, cols, 1, a, nullptr, out, true);
  }
  void tanh_forward(int n, const float* x, float* y) const override { cuda::tanh_forward(ctx_, n, x, y); }
  void tanh_backward(int n, const float* y, const float* dy, float* dx) const override {
    cuda::tanh_backward(ctx_, n, y, dy, dx);
  }
  void lstm_unit_forward(int num, int hidden, const float* c_prev, const float* x, const float* cont, float* c,
                         float* h) const override {
    cuda::lstm_unit_forward(ctx_, num, hidden, c_prev, x, cont, c, h);
  }
  void lstm_unit_backward(int num, int hidden, const float* c_prev, const float* x, const float* cont,
                          const float* dc, const float* dh, float* dx, float* dc_prev) const override {
    cuda::lstm_unit_backward(ctx_, num, hidden, c_prev, x, cont, dc, dh, dx, dc_prev);
  }
  std::pair<int64_t, float> first_outside_unit(int n, const float* x, float* scratch) const override {
    const cuda::BadIndex bad = cuda::find_bad_probability(ctx_, n, x, cuda::TargetRule{}, scratch);
    return {bad.position, bad.value};
  }

 private:
  const cuda::CudaContext& ctx_;
};
#endif

}  // namespace

std::unique_ptr<SequenceMath> SequenceMath::for_context(Context& ctx) {
#ifdef CREMA_WITH_CUDA
  if (ctx.on_gpu()) return std::make_unique<GpuSequenceMath>(*ctx.cuda());
#endif
  (void)ctx;
  return std::make_unique<CpuSequenceMath>();
}

}  // namespace crema
