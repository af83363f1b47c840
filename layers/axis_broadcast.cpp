#include "layers/axis_broadcast.hpp"

#include <algorithm>
#include <string>

#include "engine/math.hpp"

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

// Every loop below is parallel over independent rows (outer, d) or channels d, so each
// value is computed by one thread in the same order whatever the thread count: the
// results do not depend on --threads. Sums are vectorised in double.

void AxisBroadcast::apply(const float* x, const float* scale, const float* bias, float* y, float* x_copy) const {
  // x, y, x_copy: (outer, dim, inner); scale, bias: (dim)
  const long rows = static_cast<long>(outer) * dim;
#pragma omp parallel for if (rows * inner >= kParallelMinElements)
  for (long r = 0; r < rows; ++r) {
    const int d = static_cast<int>(r % dim);
    const float s = scale ? scale[d] : 1.f, t = bias ? bias[d] : 0.f;
    const float* xr = x + r * inner;  // (inner)
    float* yr = y + r * inner;        // (inner)
    if (x_copy) {
      float* cr = x_copy + r * inner;  // (inner)
#pragma omp simd
      for (int i = 0; i < inner; ++i) {
        const float v = xr[i];  // read once: y may alias x
        cr[i] = v;
        yr[i] = v * s + t;
      }
    } else {
#pragma omp simd
      for (int i = 0; i < inner; ++i) yr[i] = xr[i] * s + t;
    }
  }
}

namespace {
// sum over i of a[i] (times b[i] where b is given), a and b: (n)
double row_sum(const float* a, const float* b, int n) {
  double sum = 0;
  if (b) {
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  } else {
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; ++i) sum += a[i];
  }
  return sum;
}
}  // namespace

void AxisBroadcast::reduce(const float* a, const float* b, float* out, bool accumulate) const {
  // a, b: (outer, dim, inner); out: (dim)
#pragma omp parallel for if (static_cast<long>(outer) * dim * inner >= kParallelMinElements)
  for (int d = 0; d < dim; ++d) {
    double sum = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      sum += row_sum(a + base, b ? b + base : nullptr, inner);
    }
    out[d] = static_cast<float>(accumulate ? out[d] + sum : sum);
  }
}

void AxisBroadcast::reduce_both(const float* a, const float* b, float* sum_a, bool accumulate_a, float* sum_ab,
                                bool accumulate_ab) const {
  // a, b: (outer, dim, inner); sum_a, sum_ab: (dim)
#pragma omp parallel for if (static_cast<long>(outer) * dim * inner >= kParallelMinElements)
  for (int d = 0; d < dim; ++d) {
    double s = 0, sp = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      const float* ar = a + base;  // (inner)
      const float* br = b + base;  // (inner)
#pragma omp simd reduction(+ : s, sp)
      for (int i = 0; i < inner; ++i) {
        s += ar[i];
        sp += static_cast<double>(ar[i]) * br[i];
      }
    }
    sum_a[d] = static_cast<float>(accumulate_a ? sum_a[d] + s : s);
    sum_ab[d] = static_cast<float>(accumulate_ab ? sum_ab[d] + sp : sp);
  }
}

void AxisBroadcast::moments(const float* x, double* mean, double* var) const {
  // x: (outer, dim, inner); mean, var: (dim)
  const double m = static_cast<double>(outer) * inner;
#pragma omp parallel for if (static_cast<long>(outer) * dim * inner >= kParallelMinElements)
  for (int d = 0; d < dim; ++d) {
    // One pass over x, in double, around a shift: one of the channel's own values,
    // which lies within a few deviations of the mean, so E[(x-s)^2] - E[x-s]^2 does not
    // cancel the way E[x^2] - E[x]^2 does for a mean far from zero.
    const double shift = m > 0 ? x[static_cast<long>(d) * inner] : 0.0;
    double sum = 0, sq = 0;
    for (int o = 0; o < outer; ++o) {
      const float* xr = x + (static_cast<long>(o) * dim + d) * inner;  // (inner)
#pragma omp simd reduction(+ : sum, sq)
      for (int i = 0; i < inner; ++i) {
        const double v = xr[i] - shift;
        sum += v;
        sq += v * v;
      }
    }
    const double centred = sum / m;
    mean[d] = shift + centred;
    var[d] = std::max(0.0, sq / m - centred * centred);
  }
}

void AxisBroadcast::normalize(const float* x, const double* mean, const float* inv_std, float* y,
                              float* copy) const {
  // x, y, copy: (outer, dim, inner); mean, inv_std: (dim)
  const long rows = static_cast<long>(outer) * dim;
#pragma omp parallel for if (rows * inner >= kParallelMinElements)
  for (long r = 0; r < rows; ++r) {
    const int d = static_cast<int>(r % dim);
    const double mu = mean[d], inv = inv_std[d];
    const float* xr = x + r * inner;  // (inner)
    float* yr = y + r * inner;        // (inner)
    if (copy) {
      float* cr = copy + r * inner;  // (inner)
#pragma omp simd
      for (int i = 0; i < inner; ++i) cr[i] = yr[i] = static_cast<float>((xr[i] - mu) * inv);
    } else {
#pragma omp simd
      for (int i = 0; i < inner; ++i) yr[i] = static_cast<float>((xr[i] - mu) * inv);
    }
  }
}

void AxisBroadcast::normalize_backward(const float* y, const float* dy, const float* inv_std, float* dx) const {
  // y, dy, dx: (outer, dim, inner); inv_std: (dim)
  const double m = static_cast<double>(outer) * inner;
#pragma omp parallel for if (static_cast<long>(outer) * dim * inner >= kParallelMinElements)
  for (int d = 0; d < dim; ++d) {
    // Both means before any dx is written: dx may alias dy.
    double mean_dy = 0, mean_dy_y = 0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      mean_dy += row_sum(dy + base, nullptr, inner);
      if (y) mean_dy_y += row_sum(dy + base, y + base, inner);
    }
    mean_dy /= m;
    mean_dy_y /= m;
    const double inv = inv_std ? inv_std[d] : 1.0;
    for (int o = 0; o < outer; ++o) {
      const long base = (static_cast<long>(o) * dim + d) * inner;
      const float* dyr = dy + base;                   // (inner)
      const float* yr = y ? y + base : nullptr;       // (inner)
      float* dxr = dx + base;                         // (inner)
      if (yr) {
#pragma omp simd
        for (int i = 0; i < inner; ++i) dxr[i] = static_cast<float>((dyr[i] - mean_dy - yr[i] * mean_dy_y) * inv);
      } else {
#pragma omp simd
        for (int i = 0; i < inner; ++i) dxr[i] = static_cast<float>((dyr[i] - mean_dy) * inv);
      }
    }
  }
}

}  // namespace crema
