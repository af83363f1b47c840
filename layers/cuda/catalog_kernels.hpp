// Host-callable launchers for the device kernels of the last layers of Caffe's catalog
// to reach the GPU: ContrastiveLoss, HingeLoss, InfogainLoss, Embed, MVN and Im2col.
// (layers/im2col.hpp is plain C++ without CUDA or C++20, so it can be included here.)
// Each computes what the layer's CPU loop computes, in the same order of operations
// where that order changes the rounding, on the context's stream. Every pointer is a
// device pointer. Sums that give one value run in one block with a fixed reduction
// order in double, so they are the same on every run; Embed's weight gradient
// (add_rows_by_index) adds each row's terms in order, without float atomics, likewise.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_context.hpp"
#include "layers/cuda/misc_kernels.hpp"
#include "layers/im2col.hpp"

namespace crema::cuda {

// ---- ContrastiveLoss: pairs a_n, b_n with a similarity label y_n ---------------------
struct ContrastiveRule {
  float margin = 1.f;
  bool legacy_version = false;
};
// loss[0] = sum_n term_n / num / 2, summed in double, with term_n = dist_sq_n for
// similar pairs (y_n truncated to int non-zero), else max(margin - dist_sq_n, 0)
// (legacy) or max(margin - sqrt(dist_sq_n), 0)^2. dist_sq, y: (num); loss: (1)
void contrastive_forward(const CudaContext& ctx, int num, const ContrastiveRule& rule, const float* dist_sq,
                         const float* y, float* loss);
// dx = factor_n d_n per row, factor_n from sign top_diff[0] / num as in the CPU
// backward (sign: +1 for a, -1 for b). dist_sq, y: (num); d, dx: (num, channels)
void contrastive_backward(const CudaContext& ctx, int num, int channels, const ContrastiveRule& rule, float sign,
                          const float* dist_sq, const float* y, const float* d, const float* top_diff, float* dx);

// ---- HingeLoss: scores (num, dim), one label per row, labels already checked --------
// m = max(0, 1 -+ x) (minus at the label's class). x, m: (num, dim); label: (num)
void hinge_margins(const CudaContext& ctx, int num, int dim, const float* x, const float* label, float* m);
// dx = s w (m > 0) (L1) or s w 2 m (L2), s = -1 at the label's class, else +1, and
// w = top_diff[0] / num. m, dx: (num, dim); label: (num); top_diff: (1)
void hinge_backward(const CudaContext& ctx, int num, int dim, bool l1, const float* m, const float* label,
                    const float* top_diff, float* dx);

// ---- Labels with an optional ignore_label (read_label's rule) ------------------------
// The first label that is not a class in [0, limit) nor rule's ignore_label (NaN and
// values beyond int's range included). Waits for the stream. labels: (n); scratch: (2)
BadIndex find_bad_label(const CudaContext& ctx, int n, const float* labels, int limit, const TargetRule& rule,
                        float* scratch);
// The first target that is no probability in [0, 1] (NaN included) nor rule's ignore_label.
// Waits for the stream. targets: (n); scratch: (2)
BadIndex find_bad_probability(const CudaContext& ctx, int n, const float* targets, const TargetRule& rule,
                              float* scratch);

// ---- InfogainLoss: prob (outer, K, inner), labels (outer, inner) already checked, H (K, K) ----
// loss[0] = -sum_valid sum_k H[l, k] log(max(p_k, threshold)) / normalizer, summed in
// double; normalizer[0] (max(1, valid positions) by rule.by_valid, else the fixed
// one) is kept for backward. loss, normalizer: (1)
void infogain_forward(const CudaContext& ctx, int outer, int classes, int inner, float threshold, const float* prob,
                      const float* label, const float* h, const TargetRule& rule, float* loss, float* normalizer);
// row_sums[r] = sum_k H[r, k], in double. h: (K, K); row_sums: (K)
void infogain_row_sums(const CudaContext& ctx, int classes, const float* h, float* row_sums);
// dx = (p_k row_sums[l] - H[l, k]) top_diff[0] / normalizer[0], 0 at ignored positions.
// prob, dx: (outer, K, inner); label: (outer, inner); h: (K, K); row_sums: (K)
void infogain_backward(const CudaContext& ctx, int outer, int classes, int inner, const float* prob,
                       const float* label, const float* h, const float* row_sums, const TargetRule& rule,
                       const float* top_diff, const float* normalizer, float* dx);

// ---- Embed: indices (M) already checked, weight (rows, n), optional bias (n) ---------
// y_i = w[index_i] + bias. index: (M); w: (rows, n); bias: (n) or null; y: (M, n)
void embed_forward(const CudaContext& ctx, int m, int n, int rows, const float* index, const float* w,
                   const float* bias, float* y);
// Its weight gradient is add_rows_by_index (misc_kernels.hpp) of dy by the indices.

// ---- MVN: x seen as (groups, size), one mean and deviation per group -----------------
// y = (x - mean) inv_std with inv_std = 1 / (sqrt(var) + eps) (biased variance, two
// passes in double) when normalize_variance, else 1; inv_std is kept for backward.
// x, y: (groups, size), y may alias x; inv_std: (groups)
void mvn_forward(const CudaContext& ctx, int groups, int size, bool normalize_variance, float eps, const float* x,
                 float* y, float* inv_std);
// dx = (dy - mean(dy) - y mean(dy y)) inv_std, or dy - mean(dy) when y and inv_std
// are null. y, dy, dx: (groups, size), dx may alias dy; inv_std: (groups)
void mvn_backward(const CudaContext& ctx, int groups, int size, const float* y, const float* dy,
                  const float* inv_std, float* dx);

// ---- Im2col: images (num, C, H, W) <-> columns (num, C kh kw, out_h, out_w) ---------
// g: the geometry of one image (layers/im2col.hpp, plain C++); out_h, out_w: its
// out_height() and out_width().
// x: (num, C, H, W); col: (num, C kh kw, out_h, out_w), zeros where a window lies in the padding
void im2col_gpu(const CudaContext& ctx, int num, const ConvGeometry& g, int out_h, int out_w, const float* x,
                float* col);
// The adjoint: every pixel gathers the column entries copied from it.
// col: (num, C kh kw, out_h, out_w); x: (num, C, H, W), overwritten
void col2im_gpu(const CudaContext& ctx, int num, const ConvGeometry& g, int out_h, int out_w, const float* col,
                float* x);

}  // namespace crema::cuda
