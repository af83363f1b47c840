// What Scale and Bias share (Caffe's ScaleLayer and BiasLayer): an operand — a
// learnt parameter, or a second bottom — whose shape equals the bottom x's axes
// [axis, axis + operand axes), applied to every position of x. x is seen as
// (outer, dim, inner): outer = the axes before `axis`, dim = the operand's count,
// inner = the axes after it. A 0-axis (scalar) operand applies to every element
// whatever the axis. With the operand a parameter, its shape is x's axes
// [axis, axis + num_axes) (num_axes -1: to the last axis; 0: a scalar).
// The same (outer, dim, inner) view serves the normalisations, which compute one
// mean and deviation per d: BatchNorm (N, C, H*W) and MVN (1, groups, group size).
#pragma once

#include <vector>

#include "engine/filler.hpp"
#include "engine/layer.hpp"

namespace crema {

// The keys of bias_param (and the matching ones of scale_param): axis (default 1),
// num_axes (default 1) and `filler_key` (Caffe's default: constant `default_value`).
struct AxisOperandParams {
  int axis = 1;
  int num_axes = 1;
  FillerSpec filler;
  static AxisOperandParams parse(MapReader& r, const char* filler_key, float default_value);
};

struct AxisBroadcast {
  int outer = 0, dim = 0, inner = 0;
  // 0: the arrays are plain (outer, dim, inner). b > 0: they are in channel blocks of
  // b (a LayoutCopy's channel_block()), (outer, ceil(dim/b), inner, b), and the padding
  // lanes past dim hold 0 and are left 0 by every function below.
  int block = 0;

  // Checks that `operand` lines up with `x` at `axis` (errors name the layer and
  // `what`, e.g. "the scale (bottom 1)").
  static AxisBroadcast of(const LayerSpec& spec, const Blob& x, const Blob& operand, int axis, const char* what);
  // The shape of a parameter operand for x; errors at `spec`.
  static std::vector<int> param_shape(const LayerSpec& spec, const Blob& x, int axis, int num_axes);

  // y (outer, dim, inner) = x * scale[d] + bias[d]; scale or bias may be null (1 / 0).
  // y may alias x. Where `x_copy` is given it receives x, in the same pass.
  void apply(const float* x, const float* scale, const float* bias, float* y, float* x_copy = nullptr) const;
  // out[d] = sum over outer and inner of a (times b where b is given); added to out
  // when `accumulate` (parameter gradients), else written.
  void reduce(const float* a, const float* b, float* out, bool accumulate) const;
  // Both sums in one pass over a (Scale's bias and scale gradients): sum_a[d] of a and
  // sum_ab[d] of a times b, each added to or written as its flag says.
  void reduce_both(const float* a, const float* b, float* sum_a, bool accumulate_a, float* sum_ab,
                   bool accumulate_ab) const;

  // Per d over outer and inner: the mean and the biased variance of x.
  void moments(const float* x, double* mean, double* var) const;
  // y = (x - mean[d]) * inv_std[d]; y may alias x. Where `copy` is given (BatchNorm
  // keeps the normalised values for backward) it receives y too.
  void normalize(const float* x, const double* mean, const float* inv_std, float* y, float* copy = nullptr) const;
  // The gradient of that normalisation when mean and deviation are x's own:
  //   dx = (dy - mean(dy) - y mean(dy y)) * inv_std[d]
  // Without y (no deviation) the y term drops; without inv_std it is 1. dx may alias dy.
  void normalize_backward(const float* y, const float* dy, const float* inv_std, float* dx) const;
};

// The channel-blocked layout copy `m` (the memory of `blob`) holds, when `a` sees the
// blob, (N, C, H, W), as (N, C, H*W); else null. Per-channel loops run on it with
// a.block set to its channel_block().
LayoutCopy* channel_blocked(SyncedMemory& m, const AxisBroadcast& a, const Blob& blob);

}  // namespace crema
