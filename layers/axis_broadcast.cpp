#include "layers/axis_broadcast.hpp"

#include <string>

namespace crema {

AxisOperandParams AxisOperandParams::parse(MapReader& r, const char* filler_key, float default_value) {
  AxisOperandParams p;
  p.axis = r.get_int("axis", 1);
  p.num_axes = r.get_int("num_axes", 1);
  if (p.num_axes < -1) r.fail("num_axes", "num_axes must be non-negative, or -1 to extend to the last axis");
  const bool has_filler = r.has(filler_key);
  p.filler = FillerSpec::parse(r.sub(filler_key));
  if (!has_filler) p.filler.value = default_value;
  return p;
}

std::vector<int> AxisBroadcast::param_shape(const LayerSpec& spec, const Blob& x, int axis, int num_axes) {
  if (axis < -x.num_axes() || axis >= x.num_axes())
    spec.fail("axis " + std::to_string(axis) + " is out of range for a bottom of shape " + x.shape_string());
  const int start = x.canonical_axis(axis);
  if (num_axes >= 0 && start + num_axes > x.num_axes())
    spec.fail("num_axes " + std::to_string(num_axes) + " from axis " + std::to_string(start) +
              " extends past the last axis of a bottom of shape " + x.shape_string());
  const int end = num_axes < 0 ? x.num_axes() : start + num_axes;
  return std::vector<int>(x.shape().begin() + start, x.shape().begin() + end);
}

AxisBroadcast AxisBroadcast::of(const LayerSpec& spec, const Blob& x, const Blob& operand, int axis, const char* what) {
  // A scalar operand lines up anywhere; Caffe takes axis 0 for it.
  int start = 0;
  if (operand.num_axes() > 0) {
    if (axis < -x.num_axes() || axis >= x.num_axes())
      spec.fail("axis " + std::to_string(axis) + " is out of range for a bottom of shape " + x.shape_string());
    start = x.canonical_axis(axis);
  }
  bool fits = start + operand.num_axes() <= x.num_axes();
  for (int i = 0; fits && i < operand.num_axes(); ++i) fits = x.shape(start + i) == operand.shape(i);
  if (!fits)
    spec.fail(std::string(what) + " has shape " + operand.shape_string() + ", which does not match bottom 0 (" +
              x.shape_string() + ") from axis " + std::to_string(start) +
              "; its dimensions must equal the bottom's from that axis on");
  AxisBroadcast b;
  b.outer = x.count(0, start);
  b.dim = operand.count();
  b.inner = x.count(start + operand.num_axes());
  return b;
}

void AxisBroadcast::apply(const float* x, const float* scale, const float* bias, float* y) const {
  // x, y: (outer, dim, inner); scale, bias: (dim)
  for (int o = 0; o < outer; ++o)
    for (int d = 0; d < dim; ++d) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      const float s = scale ? scale[d] : 1.f, t = bias ? bias[d] : 0.f;
      for (int i = 0; i < inner; ++i) y[base + i] = x[base + i] * s + t;
    }
}

void AxisBroadcast::reduce(const float* a, const float* b, float* out, bool accumulate) const {
  // a, b: (outer, dim, inner); out: (dim)
  for (int d = 0; d < dim; ++d) {
    double sum = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i) sum += b ? static_cast<double>(a[base + i]) * b[base + i] : a[base + i];
    }
    out[d] = static_cast<float>(accumulate ? out[d] + sum : sum);
  }
}

void AxisBroadcast::moments(const float* x, double* mean, double* var) const {
  // x: (outer, dim, inner); mean, var: (dim)
  const double m = static_cast<double>(outer) * inner;
  for (int d = 0; d < dim; ++d) {
    double sum = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i) sum += x[base + i];
    }
    mean[d] = sum / m;
    // Two passes: the deviations from the mean, not E[x^2] - E[x]^2, which cancels.
    double sq = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i) sq += (x[base + i] - mean[d]) * (x[base + i] - mean[d]);
    }
    var[d] = sq / m;
  }
}

void AxisBroadcast::normalize(const float* x, const double* mean, const float* inv_std, float* y) const {
  // x, y: (outer, dim, inner); mean, inv_std: (dim)
  for (int o = 0; o < outer; ++o)
    for (int d = 0; d < dim; ++d) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i) y[base + i] = static_cast<float>((x[base + i] - mean[d]) * inv_std[d]);
    }
}

void AxisBroadcast::normalize_backward(const float* y, const float* dy, const float* inv_std, float* dx) const {
  // y, dy, dx: (outer, dim, inner); inv_std: (dim)
  const double m = static_cast<double>(outer) * inner;
  for (int d = 0; d < dim; ++d) {
    // Both means before any dx is written: dx may alias dy.
    double mean_dy = 0, mean_dy_y = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i) {
        mean_dy += dy[base + i];
        if (y) mean_dy_y += static_cast<double>(dy[base + i]) * y[base + i];
      }
    }
    mean_dy /= m;
    mean_dy_y /= m;
    const double inv = inv_std ? inv_std[d] : 1.0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      for (int i = 0; i < inner; ++i)
        dx[base + i] = static_cast<float>((dy[base + i] - mean_dy - (y ? y[base + i] * mean_dy_y : 0.0)) * inv);
    }
  }
}

}  // namespace crema
