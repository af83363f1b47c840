// Kernels declared in catalog_kernels.hpp. Element-wise work runs in grid-stride loops
// with int64 indices; a value summed over many elements (a loss, a group's moments)
// is summed by one block, each warp with shuffles and then the warps' totals in
// order, so the result is the same on every run. Where the CPU code uses std::max,
// the comparison is spelt out so that a NaN gives the same result on both devices.
#include <cstdint>
#include <cstring>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/catalog_kernels.hpp"

namespace crema::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;

// The sum of v over the block (blockDim.x == kThreads), returned to every thread;
// every thread of the block must call it. warp_totals: (kWarps) shared scratch.
__device__ double block_total(double v, double* warp_totals) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % kWarpSize == 0) warp_totals[threadIdx.x / kWarpSize] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kWarps; ++w) total += warp_totals[w];
  __syncthreads();  // every thread has read the totals before warp_totals is reused
  return total;
}

// std::max(a, b) exactly: (a < b) ? b : a.
__device__ float std_max(float a, float b) { return a < b ? b : a; }

// ---- ContrastiveLoss --------------------------------------------------------------

__device__ float contrastive_term(const ContrastiveRule& rule, float dist_sq, float y) {
  if (static_cast<int>(y) != 0) return dist_sq;
  if (rule.legacy_version) return std_max(rule.margin - dist_sq, 0.f);
  const float gap = std_max(rule.margin - sqrtf(dist_sq), 0.f);
  return gap * gap;
}

// One block. dist_sq, y: (num); loss: (1)
__global__ void contrastive_forward_kernel(int num, ContrastiveRule rule, const float* dist_sq, const float* y,
                                           float* loss) {
  __shared__ double warp_totals[kWarps];
  double s = 0;
  for (int64_t n = threadIdx.x; n < num; n += blockDim.x) s += contrastive_term(rule, dist_sq[n], y[n]);
  const double total = block_total(s, warp_totals);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(total) / static_cast<float>(num) / 2.f;
}

__global__ void contrastive_backward_kernel(int64_t count, int num, int channels, ContrastiveRule rule, float sign,
                                            const float* dist_sq, const float* y, const float* d,
                                            const float* top_diff, float* dx) {
  // dist_sq, y: (num); d, dx: (num, channels) = (count); top_diff: (1)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float alpha = sign * top_diff[0] / static_cast<float>(num);
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    const int64_t n = i / channels;
    float factor = alpha;  // similar pairs
    if (static_cast<int>(y[n]) == 0) {
      float gap = 0.f;
      if (rule.legacy_version) {
        gap = rule.margin - dist_sq[n];
        factor = -alpha;
      } else {
        const float dist = sqrtf(dist_sq[n]);
        gap = rule.margin - dist;
        factor = -alpha * gap / (dist + 1e-4f);
      }
      if (gap <= 0.f) factor = 0.f;
    }
    dx[i] = factor * d[i];
  }
}

// ---- HingeLoss ----------------------------------------------------------------------

__global__ void hinge_margins_kernel(int64_t count, int dim, const float* x, const float* label, float* m) {
  // x, m: (num, dim) = (count); label: (num)
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    const int l = static_cast<int>(label[i / dim]);
    const float v = 1.f + (i % dim == l ? -x[i] : x[i]);
    m[i] = 0.f < v ? v : 0.f;  // std::max(0.f, v)
  }
}

__global__ void hinge_backward_kernel(int64_t count, int num, int dim, bool l1, const float* m, const float* label,
                                      const float* top_diff, float* dx) {
  // m, dx: (num, dim) = (count); label: (num); top_diff: (1)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float w = top_diff[0] / static_cast<float>(num);
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    const int l = static_cast<int>(label[i / dim]);
    const float sign = i % dim == l ? -1.f : 1.f;
    dx[i] = sign * w * (l1 ? (m[i] > 0.f ? 1.f : 0.f) : 2.f * m[i]);
  }
}

// ---- Labels -------------------------------------------------------------------------

// read_label's rule: a class in [0, limit) or the ignore_label is good.
__device__ bool bad_label(float v, int limit, const TargetRule& rule) {
  if (!(fabsf(v) < 2147483520.f)) return true;  // NaN or beyond int's range
  if (floorf(v) != v) return true;              // not a class: refused, not truncated
  const int label = static_cast<int>(v);
  if (rule.has_ignore && label == rule.ignore_label) return false;
  return label < 0 || label >= limit;
}

// Whether the label at a position counts (checked before: it is a class or ignored).
__device__ bool counted(float v, int limit, const TargetRule& rule, int* label) {
  *label = static_cast<int>(v);
  if (rule.has_ignore && *label == rule.ignore_label) return false;
  return *label >= 0 && *label < limit;  // never read out of bounds
}

struct BadLabel {
  int limit;
  TargetRule rule;
  __device__ bool operator()(float v) const { return bad_label(v, limit, rule); }
};
// A target that is no probability in [0, 1] (NaN included), unless rule ignores it.
struct BadProbability {
  TargetRule rule;
  __device__ bool operator()(float v) const {
    if (rule.has_ignore && fabsf(v) < 2147483520.f && static_cast<int>(v) == rule.ignore_label) return false;
    return !(v >= 0.f && v <= 1.f);
  }
};

// One block. out: (2) = {the first bad position (n when none), its bit pattern kept
// in a float; the value there}. values: (n)
template <class Bad>
__global__ void find_first_bad_kernel(int n, const float* values, Bad bad, float* out) {
  __shared__ int first;
  if (threadIdx.x == 0) first = n;
  __syncthreads();
  // 64-bit steps: n near INT_MAX would wrap an int past the end.
  for (int64_t p = threadIdx.x; p < n; p += blockDim.x) {
    if (bad(values[p])) {
      atomicMin(&first, static_cast<int>(p));  // the thread's positions rise, so its first is its lowest
      break;
    }
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  out[0] = __int_as_float(first);
  out[1] = first < n ? values[first] : 0.f;
}

// ---- InfogainLoss -------------------------------------------------------------------

// One block. prob: (outer, K, inner); label: (outer, inner); h: (K, K); loss, normalizer: (1)
__global__ void infogain_forward_kernel(int outer, int classes, int inner, float threshold, const float* prob,
                                        const float* label, const float* h, TargetRule rule, float* loss,
                                        float* normalizer) {
  __shared__ double warp_totals[kWarps];
  const int64_t positions = static_cast<int64_t>(outer) * inner;
  double s = 0, valid = 0;
  for (int64_t p = threadIdx.x; p < positions; p += blockDim.x) {
    int l = 0;
    if (!counted(label[p], classes, rule, &l)) continue;
    const float* row = h + static_cast<int64_t>(l) * classes;              // row: (K)
    const float* column = prob + p / inner * classes * inner + p % inner;  // column[k * inner]: (K)
    for (int k = 0; k < classes; ++k)
      s -= row[k] * logf(std_max(column[static_cast<int64_t>(k) * inner], threshold));
    valid += 1;
  }
  const double sum = block_total(s, warp_totals), count = block_total(valid, warp_totals);
  if (threadIdx.x == 0) {
    normalizer[0] = rule.by_valid ? std_max(1.f, static_cast<float>(count)) : rule.fixed_normalizer;
    loss[0] = static_cast<float>(sum) / normalizer[0];
  }
}

__global__ void infogain_row_sums_kernel(int64_t rows, const float* h, float* row_sums) {
  // h: (K, K) with K = rows; row_sums: (K)
  for (int64_t r = first_index(); r < rows; r += grid_stride()) {
    double sum = 0;
    for (int64_t k = 0; k < rows; ++k) sum += h[r * rows + k];
    row_sums[r] = static_cast<float>(sum);
  }
}

__global__ void infogain_backward_kernel(int64_t count, int classes, int inner, const float* prob, const float* label,
                                         const float* h, const float* row_sums, TargetRule rule,
                                         const float* top_diff, const float* normalizer, float* dx) {
  // prob, dx: (outer, K, inner) = (count); label: (outer, inner); h: (K, K); row_sums: (K)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top_diff[0] / normalizer[0];
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    const int64_t within = i % inner, k = i / inner % classes, o = i / inner / classes;
    int l = 0;
    const float g = counted(label[o * inner + within], classes, rule, &l)
                        ? prob[i] * row_sums[l] - h[static_cast<int64_t>(l) * classes + k]
                        : 0.f;
    dx[i] = g * scale;
  }
}

// ---- Embed --------------------------------------------------------------------------

__global__ void embed_forward_kernel(int64_t count, int n, int rows, const float* index, const float* w,
                                     const float* bias, float* y) {
  // index: (M); w: (rows, n); bias: (n) or null; y: (M, n) = (count)
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    const int64_t j = i % n;
    const int r = static_cast<int>(index[i / n]);
    const float v = r >= 0 && r < rows ? w[static_cast<int64_t>(r) * n + j] : 0.f;  // checked before
    y[i] = bias ? v + bias[j] : v;
  }
}

// ---- MVN ----------------------------------------------------------------------------

// One block per group (groups striding over the grid). x, y: (groups, size); inv_std: (groups)
__global__ void mvn_forward_kernel(int groups, int size, bool normalize_variance, float eps, const float* x,
                                   float* y, float* inv_std) {
  __shared__ double warp_totals[kWarps];
  // g and normalize_variance are the same for every thread of the block, so the
  // barriers in block_total are reached by all.
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    const float* xg = x + g * size;  // xg: (size)
    float* yg = y + g * size;        // yg: (size), may alias xg
    double sum = 0;
    for (int64_t j = threadIdx.x; j < size; j += blockDim.x) sum += xg[j];
    const double mean = block_total(sum, warp_totals) / static_cast<double>(size);
    float inv = 1.f;
    if (normalize_variance) {
      // Two passes: the deviations from the mean, as the CPU's moments.
      double sq = 0;
      for (int64_t j = threadIdx.x; j < size; j += blockDim.x) sq += (xg[j] - mean) * (xg[j] - mean);
      const double var = block_total(sq, warp_totals) / static_cast<double>(size);
      inv = static_cast<float>(1.0 / (sqrt(var) + static_cast<double>(eps)));
    }
    // Each thread rewrites only what it reads, after the sums: y may alias x.
    for (int64_t j = threadIdx.x; j < size; j += blockDim.x) yg[j] = static_cast<float>((xg[j] - mean) * inv);
    if (threadIdx.x == 0) inv_std[g] = inv;
  }
}

// One block per group. y, dy, dx: (groups, size); inv_std: (groups); y, inv_std may be null
__global__ void mvn_backward_kernel(int groups, int size, const float* y, const float* dy, const float* inv_std,
                                    float* dx) {
  __shared__ double warp_totals[kWarps];
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    const int64_t base = g * size;
    double sum_dy = 0, sum_dy_y = 0;
    for (int64_t j = threadIdx.x; j < size; j += blockDim.x) {
      sum_dy += dy[base + j];
      if (y) sum_dy_y += static_cast<double>(dy[base + j]) * y[base + j];
    }
    const double mean_dy = block_total(sum_dy, warp_totals) / static_cast<double>(size);
    const double mean_dy_y = block_total(sum_dy_y, warp_totals) / static_cast<double>(size);
    const double inv = inv_std ? inv_std[g] : 1.0;
    // Both means are known before any dx is written: dx may alias dy.
    for (int64_t j = threadIdx.x; j < size; j += blockDim.x)
      dx[base + j] = static_cast<float>((dy[base + j] - mean_dy - (y ? y[base + j] * mean_dy_y : 0.0)) * inv);
  }
}

// ---- Im2col -------------------------------------------------------------------------

__global__ void im2col_kernel(int64_t count, ConvGeometry s, int out_h, int out_w, const float* x, float* col) {
  // x: (num, C, H, W); col: (num, C, kh, kw, out_h, out_w); one thread per (num, C, out_h, out_w) = (count)
  const int64_t out_plane = static_cast<int64_t>(out_h) * out_w;
  for (int64_t t = first_index(); t < count; t += grid_stride()) {
    const int64_t ow = t % out_w, oh = t / out_w % out_h, image_channel = t / out_plane;
    const float* plane = x + image_channel * s.height * s.width;  // plane: (H, W)
    // (image, c, 0, 0, oh, ow); each kernel offset is one out_plane further.
    const int64_t first = image_channel * s.kernel_h * s.kernel_w * out_plane + oh * out_w + ow;
    for (int i = 0; i < s.kernel_h; ++i) {
      const int64_t h = oh * s.stride_h - s.pad_h + static_cast<int64_t>(i) * s.dilation_h;
      for (int j = 0; j < s.kernel_w; ++j) {
        const int64_t w = ow * s.stride_w - s.pad_w + static_cast<int64_t>(j) * s.dilation_w;
        const bool inside = h >= 0 && h < s.height && w >= 0 && w < s.width;
        col[first + (static_cast<int64_t>(i) * s.kernel_w + j) * out_plane] = inside ? plane[h * s.width + w] : 0.f;
      }
    }
  }
}

__global__ void col2im_kernel(int64_t count, ConvGeometry s, int out_h, int out_w, const float* col, float* x) {
  // col: (num, C, kh, kw, out_h, out_w); x: (num, C, H, W) = (count), one thread per pixel
  const int64_t extent_h = static_cast<int64_t>(s.dilation_h) * (s.kernel_h - 1) + 1;
  const int64_t extent_w = static_cast<int64_t>(s.dilation_w) * (s.kernel_w - 1) + 1;
  const int64_t out_plane = static_cast<int64_t>(out_h) * out_w;
  for (int64_t t = first_index(); t < count; t += grid_stride()) {
    // The pixel in padded coordinates, and the windows (oh, ow) that cover it.
    const int64_t w_pad = t % s.width + s.pad_w, h_pad = t / s.width % s.height + s.pad_h;
    const int64_t image_channel = t / s.width / s.height;
    const int64_t oh_begin = h_pad < extent_h ? 0 : (h_pad - extent_h) / s.stride_h + 1;
    const int64_t ow_begin = w_pad < extent_w ? 0 : (w_pad - extent_w) / s.stride_w + 1;
    const int64_t oh_end = h_pad / s.stride_h < out_h ? h_pad / s.stride_h + 1 : out_h;
    const int64_t ow_end = w_pad / s.stride_w < out_w ? w_pad / s.stride_w + 1 : out_w;
    const float* cols = col + image_channel * s.kernel_h * s.kernel_w * out_plane;  // cols: (kh, kw, out_h, out_w)
    float v = 0.f;
    for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
      const int64_t dh = h_pad - oh * s.stride_h;  // in [0, extent_h)
      if (dh % s.dilation_h != 0) continue;
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const int64_t dw = w_pad - ow * s.stride_w;  // in [0, extent_w)
        if (dw % s.dilation_w != 0) continue;
        v += cols[((dh / s.dilation_h * s.kernel_w + dw / s.dilation_w) * out_h + oh) * out_w + ow];
      }
    }
    x[t] = v;
  }
}

}  // namespace

void contrastive_forward(const CudaContext& ctx, int num, const ContrastiveRule& rule, const float* dist_sq,
                         const float* y, float* loss) {
  contrastive_forward_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(num, rule, dist_sq, y, loss);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void contrastive_backward(const CudaContext& ctx, int num, int channels, const ContrastiveRule& rule, float sign,
                          const float* dist_sq, const float* y, const float* d, const float* top_diff, float* dx) {
  launch(ctx, static_cast<int64_t>(num) * channels, contrastive_backward_kernel, num, channels, rule, sign, dist_sq,
         y, d, top_diff, dx);
}

void hinge_margins(const CudaContext& ctx, int num, int dim, const float* x, const float* label, float* m) {
  launch(ctx, static_cast<int64_t>(num) * dim, hinge_margins_kernel, dim, x, label, m);
}

void hinge_backward(const CudaContext& ctx, int num, int dim, bool l1, const float* m, const float* label,
                    const float* top_diff, float* dx) {
  launch(ctx, static_cast<int64_t>(num) * dim, hinge_backward_kernel, num, dim, l1, m, label, top_diff, dx);
}

namespace {
template <class Bad>
BadIndex find_first_bad(const CudaContext& ctx, int n, const float* values, Bad bad, float* scratch) {
  if (n <= 0) return {};
  find_first_bad_kernel<Bad><<<1, kThreads, 0, stream_of(ctx)>>>(n, values, bad, scratch);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  float host[2] = {0.f, 0.f};
  CREMA_CUDA_CHECK(cudaMemcpyAsync(host, scratch, sizeof(host), cudaMemcpyDeviceToHost, stream_of(ctx)));
  CREMA_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
  int first = n;
  std::memcpy(&first, &host[0], sizeof(first));
  if (first >= n) return {};
  return {first, host[1]};
}
}  // namespace

BadIndex find_bad_label(const CudaContext& ctx, int n, const float* labels, int limit, const TargetRule& rule,
                        float* scratch) {
  return find_first_bad(ctx, n, labels, BadLabel{limit, rule}, scratch);
}

BadIndex find_bad_probability(const CudaContext& ctx, int n, const float* targets, const TargetRule& rule,
                              float* scratch) {
  return find_first_bad(ctx, n, targets, BadProbability{rule}, scratch);
}

void infogain_forward(const CudaContext& ctx, int outer, int classes, int inner, float threshold, const float* prob,
                      const float* label, const float* h, const TargetRule& rule, float* loss, float* normalizer) {
  infogain_forward_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(outer, classes, inner, threshold, prob, label, h, rule,
                                                             loss, normalizer);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void infogain_row_sums(const CudaContext& ctx, int classes, const float* h, float* row_sums) {
  launch(ctx, classes, infogain_row_sums_kernel, h, row_sums);
}

void infogain_backward(const CudaContext& ctx, int outer, int classes, int inner, const float* prob,
                       const float* label, const float* h, const float* row_sums, const TargetRule& rule,
                       const float* top_diff, const float* normalizer, float* dx) {
  launch(ctx, static_cast<int64_t>(outer) * classes * inner, infogain_backward_kernel, classes, inner, prob, label, h,
         row_sums, rule, top_diff, normalizer, dx);
}

void embed_forward(const CudaContext& ctx, int m, int n, int rows, const float* index, const float* w,
                   const float* bias, float* y) {
  launch(ctx, static_cast<int64_t>(m) * n, embed_forward_kernel, n, rows, index, w, bias, y);
}

void mvn_forward(const CudaContext& ctx, int groups, int size, bool normalize_variance, float eps, const float* x,
                 float* y, float* inv_std) {
  if (groups <= 0) return;
  mvn_forward_kernel<<<blocks_per_item(groups), kThreads, 0, stream_of(ctx)>>>(groups, size, normalize_variance, eps,
                                                                              x, y, inv_std);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void mvn_backward(const CudaContext& ctx, int groups, int size, const float* y, const float* dy,
                  const float* inv_std, float* dx) {
  if (groups <= 0) return;
  mvn_backward_kernel<<<blocks_per_item(groups), kThreads, 0, stream_of(ctx)>>>(groups, size, y, dy, inv_std, dx);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void im2col_gpu(const CudaContext& ctx, int num, const ConvGeometry& g, int out_h, int out_w, const float* x,
                float* col) {
  launch(ctx, static_cast<int64_t>(num) * g.channels * out_h * out_w, im2col_kernel, g, out_h, out_w, x, col);
}

void col2im_gpu(const CudaContext& ctx, int num, const ConvGeometry& g, int out_h, int out_w, const float* col,
                float* x) {
  launch(ctx, static_cast<int64_t>(num) * g.channels * g.height * g.width, col2im_kernel, g, out_h, out_w, col, x);
}

}  // namespace crema::cuda
