// Kernels declared in loss_kernels.hpp. Softmax runs one thread per (outer, inner)
// position with the CPU loop's order of operations, except over rows of many classes
// (inner 1, a classifier's scores), where one thread per row would read its row alone
// and threads `channels` floats apart would not coalesce: there a block shares each row, and
// its max and sums are block reductions (a tree, so the sum's last bits differ from
// the CPU's sequential one). The loss sums run in one block
// (a fixed tree, so the loss is the same on every run); Accuracy counts with atomic
// unsigned additions, exact to 2^32 (float ones would stop counting at 2^24, which a
// segmentation batch's positions pass).
#include <cfloat>
#include <cmath>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/loss_kernels.hpp"

namespace crema::cuda {

namespace {
constexpr int kIgnored = -1, kBad = -2;

// read_label's rule on the device: the class, kIgnored or kBad.
__device__ int device_label(float value, int channels, const LabelRule& rule) {
  if (!(fabsf(value) < 2147483520.f)) return kBad;  // NaN or beyond int's range
  if (floorf(value) != value) return kBad;          // not a class: refused, not truncated
  const int label = static_cast<int>(value);
  if (rule.has_ignore && label == rule.ignore_label) return kIgnored;
  return label < 0 || label >= channels ? kBad : label;
}

// loss_normalizer on the device.
__device__ float device_normalizer(int mode, int outer, int inner, float valid) {
  float normalizer = 1.f;
  switch (mode) {
    case 0: normalizer = static_cast<float>(outer) * static_cast<float>(inner); break;  // FULL
    case 1: normalizer = valid; break;                                                  // VALID
    case 2: normalizer = static_cast<float>(outer); break;                              // BATCH_SIZE
    default: break;                                                                     // NONE
  }
  return fmaxf(1.f, normalizer);
}

__global__ void softmax_forward_kernel(int64_t positions, int channels, int inner, const float* x, float* y) {
  // x, y: (outer, channels, inner) with positions = outer * inner
  for (int64_t p = first_index(); p < positions; p += grid_stride()) {
    const int64_t base = p / inner * channels * inner + p % inner;  // (o, 0, i)
    float max = x[base];
    for (int c = 1; c < channels; ++c) max = fmaxf(max, x[base + static_cast<int64_t>(c) * inner]);
    float sum = 0.f;
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + static_cast<int64_t>(c) * inner;
      y[at] = expf(x[at] - max);
      sum += y[at];
    }
    for (int c = 0; c < channels; ++c) y[base + static_cast<int64_t>(c) * inner] /= sum;
  }
}

__global__ void softmax_backward_kernel(int64_t positions, int channels, int inner, const float* y, const float* dy,
                                        float* dx) {
  // y, dy, dx: (outer, channels, inner) with positions = outer * inner
  for (int64_t p = first_index(); p < positions; p += grid_stride()) {
    const int64_t base = p / inner * channels * inner + p % inner;
    float dot = 0.f;
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + static_cast<int64_t>(c) * inner;
      dot += dy[at] * y[at];
    }
    // The dot product is complete before dx is written, so dx may alias dy.
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + static_cast<int64_t>(c) * inner;
      dx[at] = (dy[at] - dot) * y[at];
    }
  }
}

// The combination of v over the block (blockDim.x == kThreads) by `op`, returned to
// every thread; every thread of the block must call it. scratch: (kThreads) shared.
template <typename Op>
__device__ float block_reduce(float v, float* scratch, Op op) {
  const int t = static_cast<int>(threadIdx.x);
  scratch[t] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half) scratch[t] = op(scratch[t], scratch[t + half]);
    __syncthreads();
  }
  const float total = scratch[0];
  __syncthreads();  // every thread has read the total before scratch is reused
  return total;
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// Rows of at least this many classes (with inner 1) take a block each.
constexpr int kRowsKernelMinChannels = 64;

// One block per row (striding over the rest). x, y: (rows, channels); y may alias x.
// fmaxf from -inf skips NaN as the per-position kernel's fmaxf from the first value
// does, and a NaN or infinity in the row gives the same NaN through the sum.
__global__ void softmax_rows_forward_kernel(int rows, int channels, const float* x, float* y) {
  __shared__ float scratch[kThreads];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + static_cast<int64_t>(r) * channels;
    float* yr = y + static_cast<int64_t>(r) * channels;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < channels; c += blockDim.x) m = fmaxf(m, xr[c]);
    const float max = block_reduce(m, scratch, MaxOp());
    float s = 0.f;
    for (int c = threadIdx.x; c < channels; c += blockDim.x) {
      yr[c] = expf(xr[c] - max);
      s += yr[c];
    }
    const float sum = block_reduce(s, scratch, SumOp());
    for (int c = threadIdx.x; c < channels; c += blockDim.x) yr[c] /= sum;  // the elements this thread wrote
  }
}

// One block per row. y, dy, dx: (rows, channels); dx may alias dy (each thread reads
// the elements it writes, and all reads of the dot product end at the reduction).
__global__ void softmax_rows_backward_kernel(int rows, int channels, const float* y, const float* dy, float* dx) {
  __shared__ float scratch[kThreads];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t row = static_cast<int64_t>(r) * channels;
    float d = 0.f;
    for (int c = threadIdx.x; c < channels; c += blockDim.x) d += dy[row + c] * y[row + c];
    const float dot = block_reduce(d, scratch, SumOp());
    for (int c = threadIdx.x; c < channels; c += blockDim.x) dx[row + c] = (dy[row + c] - dot) * y[row + c];
  }
}

// One block of kThreads threads.
__global__ void softmax_loss_forward_kernel(int outer, int channels, int inner, const float* prob, const float* label,
                                            LabelRule rule, float* loss, float* stats) {
  // prob: (outer, channels, inner); label: (outer, inner); loss: (1); stats: (3)
  __shared__ double loss_sum[kThreads];
  __shared__ int valid[kThreads], bad[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  double my_loss = 0;
  int my_valid = 0, my_bad = 0;
  const int64_t positions = static_cast<int64_t>(outer) * inner;
  for (int64_t p = t; p < positions; p += blockDim.x) {
    const int l = device_label(label[p], channels, rule);
    if (l == kBad) ++my_bad;
    if (l < 0) continue;
    const float pr = prob[(p / inner * channels + l) * inner + p % inner];
    my_loss -= logf(fmaxf(pr, FLT_MIN));
    ++my_valid;
  }
  loss_sum[t] = my_loss;
  valid[t] = my_valid;
  bad[t] = my_bad;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half) {
      loss_sum[t] += loss_sum[t + half];
      valid[t] += valid[t + half];
      bad[t] += bad[t + half];
    }
    __syncthreads();
  }
  if (t == 0) {
    const float n = static_cast<float>(valid[0]);
    loss[0] = static_cast<float>(loss_sum[0]) / device_normalizer(rule.normalization, outer, inner, n);
    stats[0] = n;
    stats[1] = static_cast<float>(bad[0]);
  }
}

__global__ void softmax_loss_backward_kernel(int64_t n, int outer, int channels, int inner, const float* prob,
                                             const float* label, LabelRule rule, const float* stats,
                                             const float* top_diff, float* dx) {
  // prob, dx: (outer, channels, inner) = (n); label: (outer, inner); stats: (3); top_diff: (1)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top_diff[0] / device_normalizer(rule.normalization, outer, inner, stats[0]);
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int64_t o = i / (static_cast<int64_t>(channels) * inner), c = i / inner % channels, in = i % inner;
    const int l = device_label(label[o * inner + in], channels, rule);
    dx[i] = l < 0 ? 0.f : (prob[i] - (c == l ? 1.f : 0.f)) * scale;
  }
}

// counts: {correct, counted, bad labels, (the bad labels as a float, set by
// accuracy_finish_kernel), per class totals (channels), per class correct (channels)},
// zeroed before.
__global__ void accuracy_count_kernel(int64_t positions, int channels, int inner, const float* score,
                                      const float* label, int top_k, LabelRule rule, unsigned* counts) {
  // score: (outer, channels, inner); label: (outer, inner) = (positions)
  for (int64_t p = first_index(); p < positions; p += grid_stride()) {
    const int l = device_label(label[p], channels, rule);
    if (l == kBad) atomicAdd(&counts[2], 1u);
    if (l < 0) continue;
    const int64_t base = p / inner * channels * inner + p % inner;  // (o, 0, i)
    const float true_score = score[base + static_cast<int64_t>(l) * inner];
    // The true class itself counts once, hence -1; stop as soon as k are found.
    int num_better = -1;
    for (int c = 0; c < channels && num_better < top_k; ++c)
      num_better += score[base + static_cast<int64_t>(c) * inner] >= true_score;
    atomicAdd(&counts[4 + l], 1u);
    if (num_better < top_k) {
      atomicAdd(&counts[0], 1u);
      atomicAdd(&counts[4 + channels + l], 1u);
    }
    atomicAdd(&counts[1], 1u);
  }
}

__global__ void accuracy_finish_kernel(int channels, unsigned* counts, float* accuracy, float* per_class) {
  // counts: (4 + 2 channels); accuracy: (1); per_class: (channels) or null
  // The counts fit the CPU's int counters, so the quotients convert as the CPU's do.
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    accuracy[0] = counts[1] == 0 ? 0.f : static_cast<float>(counts[0]) / static_cast<float>(counts[1]);
    reinterpret_cast<float*>(counts)[3] = static_cast<float>(counts[2]);  // read back by read_check
  }
  if (!per_class) return;
  for (int64_t c = first_index(); c < channels; c += grid_stride()) {
    const unsigned total = counts[4 + c];
    per_class[c] = total == 0 ? 0.f : static_cast<float>(counts[4 + channels + c]) / static_cast<float>(total);
  }
}

// One block of kThreads threads.
__global__ void sumsq_to_kernel(int n, const float* x, float scale, float* out) {  // x: (n); out: (1)
  __shared__ double partial[kThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<double>(x[i]) * x[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = scale * static_cast<float>(partial[0]);
}

__global__ void scale_by_scalar_kernel(int64_t n, const float* s, float factor, const float* x, float* y) {
  // x, y: (n); s: (1)
  const float alpha = factor * s[0];
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = alpha * x[i];
}

// Whether softmax takes the block-per-row kernels.
bool uses_rows_kernels(int outer, int channels, int inner) {
  return inner == 1 && channels >= kRowsKernelMinChannels && outer > 0;
}

// Copies the count of bad labels (a float at `at`) to the host, once the stream is done.
LabelCheck read_check(const CudaContext& ctx, const float* at) {
  float host = 0.f;
  CREMA_CUDA_CHECK(cudaMemcpyAsync(&host, at, sizeof(host), cudaMemcpyDeviceToHost, stream_of(ctx)));
  CREMA_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
  return {host};
}
}  // namespace

void softmax_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* x, float* y) {
  if (uses_rows_kernels(outer, channels, inner)) {
    softmax_rows_forward_kernel<<<blocks_per_item(outer), kThreads, 0, stream_of(ctx)>>>(outer, channels, x, y);
    CREMA_CUDA_LAUNCHED(stream_of(ctx));
    return;
  }
  launch(ctx, static_cast<int64_t>(outer) * inner, softmax_forward_kernel, channels, inner, x, y);
}

void softmax_backward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* y,
                          const float* dy, float* dx) {
  if (uses_rows_kernels(outer, channels, inner)) {
    softmax_rows_backward_kernel<<<blocks_per_item(outer), kThreads, 0, stream_of(ctx)>>>(outer, channels, y, dy, dx);
    CREMA_CUDA_LAUNCHED(stream_of(ctx));
    return;
  }
  launch(ctx, static_cast<int64_t>(outer) * inner, softmax_backward_kernel, channels, inner, y, dy, dx);
}

LabelCheck softmax_loss_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* prob,
                                    const float* label, const LabelRule& rule, float* loss, float* stats) {
  softmax_loss_forward_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(outer, channels, inner, prob, label, rule, loss,
                                                                  stats);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  return read_check(ctx, stats + 1);
}

void softmax_loss_backward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* prob,
                               const float* label, const LabelRule& rule, const float* stats, const float* top_diff,
                               float* dx) {
  launch(ctx, static_cast<int64_t>(outer) * channels * inner, softmax_loss_backward_kernel, outer, channels, inner,
         prob, label, rule, stats, top_diff, dx);
}

int accuracy_scratch_size(int channels) { return 4 + 2 * channels; }

LabelCheck accuracy_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* score,
                                const float* label, int top_k, const LabelRule& rule, float* counts, float* accuracy,
                                float* per_class) {
  // The float scratch holds unsigned counters: both are 4 bytes with 4-byte alignment.
  static_assert(sizeof(unsigned) == sizeof(float) && alignof(unsigned) == alignof(float));
  unsigned* counters = reinterpret_cast<unsigned*>(counts);
  const size_t scratch = sizeof(unsigned) * static_cast<size_t>(accuracy_scratch_size(channels));
  CREMA_CUDA_CHECK(cudaMemsetAsync(counters, 0, scratch, stream_of(ctx)));
  launch(ctx, static_cast<int64_t>(outer) * inner, accuracy_count_kernel, channels, inner, score, label, top_k, rule,
         counters);
  accuracy_finish_kernel<<<blocks_for(channels), kThreads, 0, stream_of(ctx)>>>(channels, counters, accuracy,
                                                                                per_class);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  return read_check(ctx, counts + 3);
}

void sumsq_to_gpu(const CudaContext& ctx, int n, const float* x, float scale, float* out) {
  sumsq_to_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(n, x, scale, out);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void scale_by_scalar_gpu(const CudaContext& ctx, int n, const float* s, float factor, const float* x, float* y) {
  launch(ctx, n, scale_by_scalar_kernel, s, factor, x, y);
}

}  // namespace crema::cuda
