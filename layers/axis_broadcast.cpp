#include "layers/axis_broadcast.hpp"

#include <algorithm>
#include <string>

#include "engine/error.hpp"
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

namespace {

// The functions of AxisBroadcast on channel blocks: arrays (outer, blocks, inner, b),
// channel d = block * b + lane. Operands are copied into per-lane arrays padded with
// zeros, so the padding lanes compute 0 (0 * 0 + 0) and loops run over whole blocks,
// the lanes vectorised. Parallel over (outer, block) rows or over blocks, each value
// computed by one thread in a fixed order, as in the plain loops.
struct Blocked {
  static constexpr int kMaxBlock = 16;  // LayoutCopy::channel_block() is 8 or 16
  int outer, dim, inner, b, blocks;
  explicit Blocked(const AxisBroadcast& a)
      : outer(a.outer), dim(a.dim), inner(a.inner), b(a.block), blocks((a.dim + a.block - 1) / a.block) {
    if (b > kMaxBlock) throw Error("channel blocks of " + std::to_string(b) + " are not supported");
  }

  long lanes() const { return static_cast<long>(blocks) * b; }
  long elements() const { return static_cast<long>(outer) * lanes() * inner; }
  // `v` (dim) padded with `pad` to (blocks * b), or null when v is.
  template <typename T>
  std::vector<T> padded(const T* v, T fill) const {
    std::vector<T> out(static_cast<size_t>(lanes()), T(0));
    for (int d = 0; d < dim; ++d) out[static_cast<size_t>(d)] = v ? v[d] : fill;
    return out;
  }
  // Offset of row (o, block k): (inner, b) values.
  long row(int o, int k) const { return (static_cast<long>(o) * blocks + k) * inner * b; }

  void apply(const float* x, const float* scale, const float* bias, float* y, float* x_copy) const {
    const std::vector<float> s = padded(scale, 1.f), t = padded(bias, 0.f);
    const long rows = static_cast<long>(outer) * blocks;
#pragma omp parallel for if (elements() >= kParallelMinElements)
    for (long r = 0; r < rows; ++r) {
      const float* sk = s.data() + (r % blocks) * b;  // (b)
      const float* tk = t.data() + (r % blocks) * b;  // (b)
      const long base = r * inner * b;
      for (int i = 0; i < inner; ++i) {
        const float* xi = x + base + static_cast<long>(i) * b;  // (b)
        float* yi = y + base + static_cast<long>(i) * b;        // (b)
        if (x_copy) {
          float* ci = x_copy + base + static_cast<long>(i) * b;  // (b)
#pragma omp simd
          for (int l = 0; l < b; ++l) {
            const float v = xi[l];  // read once: y may alias x
            ci[l] = v;
            yi[l] = v * sk[l] + tk[l];
          }
        } else {
#pragma omp simd
          for (int l = 0; l < b; ++l) yi[l] = xi[l] * sk[l] + tk[l];
        }
      }
    }
  }

  // Per channel: sum_ab of a times b_ (of a alone without b_), and sum_a of a where
  // given; each added to its output or written, as its flag says.
  void reduce(const float* a, const float* b_, float* sum_ab, bool accumulate_ab, float* sum_a,
              bool accumulate_a) const {
#pragma omp parallel for if (elements() >= kParallelMinElements)
    for (int k = 0; k < blocks; ++k) {
      double s[kMaxBlock] = {}, sp[kMaxBlock] = {};
      for (int o = 0; o < outer; ++o)
        for (int i = 0; i < inner; ++i) {
          const float* ai = a + row(o, k) + static_cast<long>(i) * b;  // (b)
          if (b_) {
            const float* bi = b_ + row(o, k) + static_cast<long>(i) * b;  // (b)
#pragma omp simd
            for (int l = 0; l < b; ++l) {
              s[l] += ai[l];
              sp[l] += static_cast<double>(ai[l]) * bi[l];
            }
          } else {
#pragma omp simd
            for (int l = 0; l < b; ++l) s[l] += ai[l];
          }
        }
      for (int l = 0; l < b && k * b + l < dim; ++l) {
        const int d = k * b + l;
        const double with_b = b_ ? sp[l] : s[l];
        sum_ab[d] = static_cast<float>(accumulate_ab ? sum_ab[d] + with_b : with_b);
        if (sum_a) sum_a[d] = static_cast<float>(accumulate_a ? sum_a[d] + s[l] : s[l]);
      }
    }
  }

  void moments(const float* x, double* mean, double* var) const {
    const double m = static_cast<double>(outer) * inner;
#pragma omp parallel for if (elements() >= kParallelMinElements)
    for (int k = 0; k < blocks; ++k) {
      double shift[kMaxBlock] = {}, sum[kMaxBlock] = {}, sq[kMaxBlock] = {};
      if (m > 0)
        for (int l = 0; l < b; ++l) shift[l] = x[row(0, k) + l];  // as the plain loop: a value of the channel
      for (int o = 0; o < outer; ++o)
        for (int i = 0; i < inner; ++i) {
          const float* xi = x + row(o, k) + static_cast<long>(i) * b;  // (b)
#pragma omp simd
          for (int l = 0; l < b; ++l) {
            const double v = xi[l] - shift[l];
            sum[l] += v;
            sq[l] += v * v;
          }
        }
      for (int l = 0; l < b && k * b + l < dim; ++l) {
        const double centred = sum[l] / m;
        mean[k * b + l] = shift[l] + centred;
        var[k * b + l] = std::max(0.0, sq[l] / m - centred * centred);
      }
    }
  }

  void normalize(const float* x, const double* mean, const float* inv_std, float* y, float* copy) const {
    const std::vector<double> mu = padded(mean, 0.0);
    const std::vector<float> inv = padded(inv_std, 0.f);  // 0 in the padding: it stays 0
    const long rows = static_cast<long>(outer) * blocks;
#pragma omp parallel for if (elements() >= kParallelMinElements)
    for (long r = 0; r < rows; ++r) {
      const double* mk = mu.data() + (r % blocks) * b;  // (b)
      const float* ik = inv.data() + (r % blocks) * b;  // (b)
      const long base = r * inner * b;
      for (int i = 0; i < inner; ++i) {
        const long at = base + static_cast<long>(i) * b;
        if (copy) {
#pragma omp simd
          for (int l = 0; l < b; ++l) copy[at + l] = y[at + l] = static_cast<float>((x[at + l] - mk[l]) * ik[l]);
        } else {
#pragma omp simd
          for (int l = 0; l < b; ++l) y[at + l] = static_cast<float>((x[at + l] - mk[l]) * ik[l]);
        }
      }
    }
  }

  void normalize_backward(const float* y, const float* dy, const float* inv_std, float* dx) const {
    const double m = static_cast<double>(outer) * inner;
    const std::vector<float> inv = inv_std ? padded(inv_std, 0.f) : padded<float>(nullptr, 1.f);
#pragma omp parallel for if (elements() >= kParallelMinElements)
    for (int k = 0; k < blocks; ++k) {
      // Both means before any dx is written: dx may alias dy.
      double mean_dy[kMaxBlock] = {}, mean_dy_y[kMaxBlock] = {};
      for (int o = 0; o < outer; ++o)
        for (int i = 0; i < inner; ++i) {
          const long at = row(o, k) + static_cast<long>(i) * b;
          if (y) {
#pragma omp simd
            for (int l = 0; l < b; ++l) {
              mean_dy[l] += dy[at + l];
              mean_dy_y[l] += static_cast<double>(dy[at + l]) * y[at + l];
            }
          } else {
#pragma omp simd
            for (int l = 0; l < b; ++l) mean_dy[l] += dy[at + l];
          }
        }
      for (int l = 0; l < b; ++l) {
        mean_dy[l] /= m;
        mean_dy_y[l] /= m;
      }
      const float* ik = inv.data() + static_cast<long>(k) * b;  // (b)
      for (int o = 0; o < outer; ++o)
        for (int i = 0; i < inner; ++i) {
          const long at = row(o, k) + static_cast<long>(i) * b;
          if (y) {
#pragma omp simd
            for (int l = 0; l < b; ++l)
              dx[at + l] = static_cast<float>((dy[at + l] - mean_dy[l] - y[at + l] * mean_dy_y[l]) * ik[l]);
          } else {
#pragma omp simd
            for (int l = 0; l < b; ++l) dx[at + l] = static_cast<float>((dy[at + l] - mean_dy[l]) * ik[l]);
          }
        }
    }
  }
};

}  // namespace

// Every loop below is parallel over independent rows (outer, d) or channels d, so each
// value is computed by one thread in the same order whatever the thread count: the
// results do not depend on --threads. Sums are vectorised in double.

void AxisBroadcast::apply(const float* x, const float* scale, const float* bias, float* y, float* x_copy) const {
  if (block) return Blocked(*this).apply(x, scale, bias, y, x_copy);
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
  if (block) return Blocked(*this).reduce(a, b, out, accumulate, nullptr, false);
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
  if (block) return Blocked(*this).reduce(a, b, sum_ab, accumulate_ab, sum_a, accumulate_a);
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
  if (block) return Blocked(*this).moments(x, mean, var);
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
  if (block) return Blocked(*this).normalize(x, mean, inv_std, y, copy);
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
  if (block) return Blocked(*this).normalize_backward(y, dy, inv_std, dx);
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

LayoutCopy* channel_blocked(SyncedMemory& m, const AxisBroadcast& a, const Blob& blob) {
  LayoutCopy* copy = m.layout();
  if (!copy || copy->channel_block() == 0 || blob.num_axes() != 4 || !copy->made_for(blob.shape())) return nullptr;
  const bool channels = a.outer == blob.shape(0) && a.dim == blob.shape(1) && a.inner == blob.count(2);
  return channels ? copy : nullptr;
}

}  // namespace crema
