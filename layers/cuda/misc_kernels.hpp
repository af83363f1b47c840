// Host-callable launchers for the device kernels of the smaller layers: Reduction,
// Tile, Crop, BatchReindex, SigmoidCrossEntropyLoss, MultinomialLogisticLoss and
// ArgMax, and the rows added by index that BatchReindex's and Embed's gradients use.
// Each computes what the layer's CPU loop computes, in the same order of operations
// where the order changes the rounding, on the context's stream. Every pointer is a
// device pointer. Gradients are gathered (one thread per output element, or per column
// of a sorted run of indices); the only atomics count integers, so every result is the
// same on every run.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

// ---- Reduction: the bottom seen as (num, dim), one output per row ----------------
enum class Reduce { sum, asum, sumsq };  // MEAN is sum with coeff / dim
// y_r = coeff * reduce(x_r), summed in double. x: (num, dim); y: (num)
void reduction_forward(const CudaContext& ctx, int num, int dim, Reduce op, float coeff, const float* x, float* y);
// dx = coeff dy_r {1, sign(x), 2x}. x, dx: (num, dim); dy: (num)
void reduction_backward(const CudaContext& ctx, int num, int dim, Reduce op, float coeff, const float* x,
                        const float* dy, float* dx);

// ---- Tile: the bottom seen as (outer, inner), the top as (outer, tiles, inner) ----
void tile_forward(const CudaContext& ctx, int outer, int tiles, int inner, const float* x,
                  float* y);  // x: (outer, inner); y: (outer, tiles, inner)
// dx = sum over the tiles of dy, added in tile order. dy: (outer, tiles, inner); dx: (outer, inner)
void tile_backward(const CudaContext& ctx, int outer, int tiles, int inner, const float* dy, float* dx);

// ---- Crop: a window of the big blob (bottom 0) of the small blob's (the top's) shape ----
constexpr int kMaxCropAxes = 32;  // Caffe's kMaxBlobAxes
struct CropWindow {
  int axes = 0;
  int small_shape[kMaxCropAxes] = {};
  int offset[kMaxCropAxes] = {};       // where the window starts on each axis of the big blob
  int64_t big_stride[kMaxCropAxes] = {};  // elements per step along each axis of the big blob
};
// small = the window of big. big: (big shape); small: (small shape) = (n)
void crop_forward(const CudaContext& ctx, int64_t n, const CropWindow& w, const float* big, float* small);
// big = small inside the window, 0 elsewhere. small: (n); big: (big_count)
void crop_backward(const CudaContext& ctx, int64_t n, int64_t big_count, const CropWindow& w, const float* small,
                   float* big);

// ---- Checking indices stored as floats, as the CPU's readers do ----------------
// index: read_index (a whole number in [0, limit)); label: read_label without an
// ignore_label (|v| < 2147483520, truncated to int, in [0, limit)).
enum class IndexRule { index, label };
// The first value that breaks the rule, for the host to report as the CPU does.
struct BadIndex {
  int64_t position = -1;  // -1: every value is good
  float value = 0.f;
};
// Waits for the stream. values: (n); scratch: (3)
BadIndex find_bad_index(const CudaContext& ctx, int n, const float* values, int limit, IndexRule rule,
                        float* scratch);

// ---- BatchReindex: x (N, inner), indices (K), y (K, inner); indices already checked ----
void batch_reindex_forward(const CudaContext& ctx, int items, int inner, const float* x, const float* index,
                           float* y);  // x: (N, inner); index: (K = items); y: (K, inner)
// Its backward: dx = 0, then add_rows_by_index of dy by the indices.

// ---- Rows added by index: Embed's weight gradient, BatchReindex's input gradient ------
// out[index_i] += rows_i for i = 0 .. m-1, each out row's terms added in increasing i as
// the CPU loops add them: the positions are sorted by index first (one block), then one
// thread per column of each index's run adds the run. No float atomics, so the result
// is the same on every run and equal to the CPU's, bit for bit. Indices outside
// [0, out_rows) are skipped (the layers' forward refuses them).
// rows: (m, n); index: (m); scratch: (2 out_rows + 1 + m) ints (reshape_index_scratch,
// layers/index_value.hpp); out: (out_rows, n)
void add_rows_by_index(const CudaContext& ctx, int m, int n, int out_rows, const float* rows, const float* index,
                       int* scratch, float* out);

// ---- SigmoidCrossEntropyLoss over n scores and targets ---------------------------
struct TargetRule {
  bool has_ignore = false;
  int ignore_label = 0;  // targets truncated to int equal to it are skipped
  bool by_valid = false;  // normalizer = max(1, targets not ignored) (VALID), else fixed
  float fixed_normalizer = 1.f;
};
// loss[0] = -sum_valid (x (t - [x >= 0]) - log(1 + e^(x - 2x [x >= 0]))) / normalizer,
// summed in double; normalizer[0] is kept for backward. x, t: (n); loss, normalizer: (1)
void sigmoid_cross_entropy_forward(const CudaContext& ctx, int n, const float* x, const float* t,
                                   const TargetRule& rule, float* loss, float* normalizer);
// dx = (p - t) top_diff[0] / normalizer[0], 0 where ignored. p, t, dx: (n); top_diff, normalizer: (1)
void sigmoid_cross_entropy_backward(const CudaContext& ctx, int n, const float* p, const float* t,
                                    const TargetRule& rule, const float* top_diff, const float* normalizer,
                                    float* dx);

// ---- MultinomialLogisticLoss: p (num, dim), one label per row, labels already checked ----
// loss[0] = -sum_n log(max(p_{n, label_n}, threshold)) / num, summed in double.
// p: (num, dim); label: (num); loss: (1)
void multinomial_logistic_forward(const CudaContext& ctx, int num, int dim, float threshold, const float* p,
                                  const float* label, float* loss);
// dp_{n, label_n} = -top_diff[0] / (num max(p, threshold)), 0 elsewhere.
// p, dp: (num, dim); label: (num); top_diff: (1)
void multinomial_logistic_backward(const CudaContext& ctx, int num, int dim, float threshold, const float* p,
                                   const float* label, const float* top_diff, float* dp);

// ---- ArgMax: the bottom seen as (outer, dim, inner) -------------------------------
// Ranks each position's dim values by (value, index) descending, as the CPU's
// partial_sort with std::greater does. With indices_and_values (no axis and
// out_max_val), y: (outer, 2, top_k) holding the indices, then the values; else
// y: (outer, top_k, inner) holding the values when out_values, else the indices.
void argmax_forward(const CudaContext& ctx, int outer, int dim, int inner, int top_k, bool indices_and_values,
                    bool out_values, const float* x, float* y);  // x: (outer, dim, inner)

}  // namespace crema::cuda
