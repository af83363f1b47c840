// Kernels declared in misc_kernels.hpp. Element-wise work runs in grid-stride loops
// with int64 indices; sums that give one value (a row of Reduction, a loss) run in
// one block per value with a fixed reduction tree in double, so that they are the
// same on every run. Where the CPU code uses std::max, the comparison is spelt out
// so that a NaN gives the same result on both devices (fmaxf would drop it).
#include "engine/cuda/grid.hpp"
#include "layers/cuda/misc_kernels.hpp"

namespace crema::cuda {

namespace {

// The sum of v over the block (blockDim.x == kThreads, a power of two); every thread
// of the block must call it. partial: (kThreads) shared scratch.
__device__ double block_sum(double v, double* partial) {
  const int t = static_cast<int>(threadIdx.x);
  partial[t] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  const double total = partial[0];
  __syncthreads();  // every thread has read the total before partial is reused
  return total;
}

// std::max(a, b) exactly: (a < b) ? b : a.
__device__ float std_max(float a, float b) { return a < b ? b : a; }

// ---- Reduction ----------------------------------------------------------------------

// One block per row (rows striding over the grid). x: (num, dim); y: (num)
__global__ void reduction_forward_kernel(int num, int dim, Reduce op, float coeff, const float* x, float* y) {
  __shared__ double partial[kThreads];
  // r is the same for every thread of the block, so block_sum's barriers are uniform.
  for (int64_t r = blockIdx.x; r < num; r += gridDim.x) {
    const float* row = x + r * dim;  // row: (dim)
    double s = 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      const double v = row[j];
      s += op == Reduce::sum ? v : op == Reduce::asum ? fabs(v) : v * v;
    }
    const double total = block_sum(s, partial);
    if (threadIdx.x == 0) y[r] = coeff * static_cast<float>(total);
  }
}

__global__ void reduction_backward_kernel(int64_t n, int dim, Reduce op, float coeff, const float* x,
                                          const float* dy, float* dx) {
  // x, dx: (num, dim) = (n); dy: (num)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float g = coeff * dy[i / dim];
    const float v = x[i];
    switch (op) {
      case Reduce::sum: dx[i] = g; break;
      case Reduce::asum: dx[i] = v > 0.f ? g : v < 0.f ? -g : 0.f; break;
      case Reduce::sumsq: dx[i] = 2.f * g * v; break;
    }
  }
}

// ---- Tile ---------------------------------------------------------------------------

__global__ void tile_forward_kernel(int64_t n, int tiles, int inner, const float* x, float* y) {
  // x: (outer, inner); y: (outer, tiles, inner) = (n)
  const int64_t block = static_cast<int64_t>(tiles) * inner;
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = x[i / block * inner + i % inner];
}

__global__ void tile_backward_kernel(int64_t n, int tiles, int inner, const float* dy, float* dx) {
  // dy: (outer, tiles, inner); dx: (outer, inner) = (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float* from = dy + i / inner * tiles * inner + i % inner;  // tile 0 of (o, j)
    float s = from[0];
    for (int t = 1; t < tiles; ++t) s += from[static_cast<int64_t>(t) * inner];
    dx[i] = s;
  }
}

// ---- Crop ---------------------------------------------------------------------------

// Offset in the big blob of element i of the small one.
__device__ int64_t big_offset(int64_t i, const CropWindow& w) {
  int64_t at = 0;
  for (int a = w.axes - 1; a >= 0; --a) {
    const int64_t index = i % w.small_shape[a];
    i /= w.small_shape[a];
    at += (index + w.offset[a]) * w.big_stride[a];
  }
  return at;
}

__global__ void crop_forward_kernel(int64_t n, CropWindow w, const float* big, float* small) {
  // big: (big shape); small: (small shape) = (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) small[i] = big[big_offset(i, w)];
}

__global__ void crop_backward_kernel(int64_t n, CropWindow w, const float* small, float* big) {
  // small: (small shape) = (n); big: (big shape); each thread writes its own element
  for (int64_t i = first_index(); i < n; i += grid_stride()) big[big_offset(i, w)] = small[i];
}

// ---- Index checks -------------------------------------------------------------------

__device__ bool bad_index(float v, int limit, IndexRule rule) {
  if (rule == IndexRule::index) return !(v >= 0.f && v < static_cast<float>(limit)) || floorf(v) != v;
  if (!(fabsf(v) < 2147483520.f)) return true;  // NaN or beyond int's range
  if (floorf(v) != v) return true;              // not a class: refused, not truncated
  const int label = static_cast<int>(v);
  return label < 0 || label >= limit;
}

// One block. out: (3) = {-1 when all are good, else position / 2^16; position % 2^16;
// the value}, the position split so that each half is exact in a float.
__global__ void find_bad_index_kernel(int n, const float* values, int limit, IndexRule rule, float* out) {
  // values: (n)
  __shared__ int64_t first[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  int64_t mine = n;  // none
  for (int64_t p = t; p < n; p += blockDim.x) {
    if (bad_index(values[p], limit, rule)) {
      mine = p;  // the thread's positions rise, so its first is its lowest
      break;
    }
  }
  first[t] = mine;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half && first[t + half] < first[t]) first[t] = first[t + half];
    __syncthreads();
  }
  if (t != 0) return;
  const int64_t p = first[0];
  out[0] = p == n ? -1.f : static_cast<float>(p >> 16);
  out[1] = p == n ? 0.f : static_cast<float>(p & 0xFFFF);
  out[2] = p == n ? 0.f : values[p];
}

// ---- BatchReindex -------------------------------------------------------------------

__global__ void batch_reindex_forward_kernel(int64_t n, int inner, const float* x, const float* index, float* y) {
  // x: (N, inner); index: (K); y: (K, inner) = (n)
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int64_t source = static_cast<int64_t>(index[i / inner]);
    y[i] = x[source * inner + i % inner];
  }
}

// ---- Rows added by index --------------------------------------------------------------

// One block (blockDim.x == kThreads). A stable counting sort of the positions by the
// row they name: order lists row 0's positions, then row 1's, ..., each in increasing
// order, and row r's run is order[start[r] .. start[r + 1]). Rows out of range (none
// where the layer's forward checked them) are left out. index: (m); start: (rows + 1);
// cursor: (rows) scratch; order: (m).
__global__ void index_sort_kernel(int m, int rows, const float* index, int* start, int* cursor, int* order) {
  __shared__ int keys[kThreads];    // one chunk's rows
  __shared__ int totals[kThreads];  // each thread's share of the row counts
  const int t = static_cast<int>(threadIdx.x);
  const auto key_of = [&](int i) {
    const int r = static_cast<int>(index[i]);
    return r >= 0 && r < rows ? r : -1;
  };
  for (int r = t; r < rows; r += kThreads) cursor[r] = 0;
  __syncthreads();
  for (int i = t; i < m; i += kThreads)
    if (const int r = key_of(i); r >= 0) atomicAdd(cursor + r, 1);  // integer counts: any order gives the same
  __syncthreads();
  // Exclusive scan of the counts: each thread sums a contiguous share of the rows,
  // thread 0 scans the shares, then each thread writes its share's starts.
  const int per = (rows + kThreads - 1) / kThreads;
  const int lo = t * per < rows ? t * per : rows, hi = lo + per < rows ? lo + per : rows;
  int share = 0;
  for (int r = lo; r < hi; ++r) share += cursor[r];
  totals[t] = share;
  __syncthreads();
  if (t == 0) {
    int running = 0;
    for (int k = 0; k < kThreads; ++k) {
      const int v = totals[k];
      totals[k] = running;
      running += v;
    }
    start[rows] = running;
  }
  __syncthreads();
  int running = totals[t];
  for (int r = lo; r < hi; ++r) {
    const int count = cursor[r];
    start[r] = running;
    cursor[r] = running;
    running += count;
  }
  __syncthreads();
  // Positions in chunks of kThreads, in order: within a chunk, a position goes after
  // the earlier ones of its row, and the chunk's last of each row moves the cursor on.
  for (int base = 0; base < m; base += kThreads) {
    const int i = base + t;
    const int key = i < m ? key_of(i) : -1;
    keys[t] = key;
    __syncthreads();
    const int in_chunk = m - base < kThreads ? m - base : kThreads;
    int before = 0;
    bool last = true;
    if (key >= 0) {
      for (int k = 0; k < in_chunk; ++k)
        if (keys[k] == key) {
          if (k < t) ++before;
          if (k > t) last = false;
        }
      order[cursor[key] + before] = i;
    }
    __syncthreads();  // every thread has read the cursors before they move
    if (key >= 0 && last) cursor[key] += before + 1;
    __syncthreads();
  }
}

// out[r] += rows_i over row r's positions in increasing order, as the CPU loops add
// them, so the sum is the same on every run and equal to the CPU's. The thread of
// column j of the first position of each run does the run. count = m * n.
// index: (m); start: (rows + 1); order: (m); dy: (m, n) the rows; dw: (rows, n) out
__global__ void add_sorted_rows_kernel(int64_t count, int n, int rows, const float* index, const int* start,
                                       const int* order, const float* dy, float* dw) {
  for (int64_t e = first_index(); e < count; e += grid_stride()) {
    const int p = static_cast<int>(e / n);
    const int64_t j = e % n;
    if (p >= start[rows]) continue;  // past the sorted positions (none when every row was in range)
    const int r = static_cast<int>(index[order[p]]);
    if (start[r] != p) continue;  // not the first of its row's run
    float* out = dw + static_cast<int64_t>(r) * n + j;
    float acc = *out;
    // The loads do not depend on the sum: unrolled, several are in flight at once, so a
    // row named thousands of times is not one load's latency per term.
#ifdef __CUDACC__  // nvcc's; the host emulation's compiler does not know it
#pragma unroll 8
#endif
    for (int q = p; q < start[r + 1]; ++q) acc += dy[static_cast<int64_t>(order[q]) * n + j];
    *out = acc;
  }
}

// ---- SigmoidCrossEntropyLoss --------------------------------------------------------

__device__ bool ignored(float target, const TargetRule& rule) {
  return rule.has_ignore && static_cast<int>(target) == rule.ignore_label;
}

// One block. x, t: (n); loss, normalizer: (1)
__global__ void sigmoid_cross_entropy_forward_kernel(int n, const float* x, const float* t, TargetRule rule,
                                                     float* loss, float* normalizer) {
  __shared__ double partial[kThreads];
  double my_loss = 0, my_valid = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    if (ignored(t[i], rule)) continue;
    const float positive = x[i] >= 0.f ? 1.f : 0.f;
    my_loss -= x[i] * (t[i] - positive) - logf(1.f + expf(x[i] - 2.f * x[i] * positive));
    my_valid += 1;
  }
  const double sum = block_sum(my_loss, partial);
  const double valid = block_sum(my_valid, partial);
  if (threadIdx.x != 0) return;
  const float norm = rule.by_valid ? std_max(1.f, static_cast<float>(valid)) : rule.fixed_normalizer;
  loss[0] = static_cast<float>(sum) / norm;
  normalizer[0] = norm;
}

__global__ void sigmoid_cross_entropy_backward_kernel(int64_t n, const float* p, const float* t, TargetRule rule,
                                                      const float* top_diff, const float* normalizer, float* dx) {
  // p, t, dx: (n); top_diff, normalizer: (1)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top_diff[0] / normalizer[0];
  for (int64_t i = first_index(); i < n; i += grid_stride()) dx[i] = ignored(t[i], rule) ? 0.f : scale * (p[i] - t[i]);
}

// ---- MultinomialLogisticLoss --------------------------------------------------------

// One block. p: (num, dim); label: (num); loss: (1)
__global__ void multinomial_logistic_forward_kernel(int num, int dim, float threshold, const float* p,
                                                    const float* label, float* loss) {
  __shared__ double partial[kThreads];
  double s = 0;
  for (int64_t r = threadIdx.x; r < num; r += blockDim.x) {
    const int l = static_cast<int>(label[r]);
    if (l < 0 || l >= dim) continue;  // checked before; never read out of bounds
    s -= logf(std_max(p[r * dim + l], threshold));
  }
  const double sum = block_sum(s, partial);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(sum) / static_cast<float>(num);
}

__global__ void multinomial_logistic_backward_kernel(int64_t n, int num, int dim, float threshold, const float* p,
                                                     const float* label, const float* top_diff, float* dp) {
  // p, dp: (num, dim) = (n); label: (num); top_diff: (1)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = -top_diff[0] / static_cast<float>(num);
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int l = static_cast<int>(label[i / dim]);
    dp[i] = i % dim == l ? scale / std_max(p[i], threshold) : 0.f;
  }
}

// ---- ArgMax -------------------------------------------------------------------------

// (a_value, a_index) < (b_value, b_index) as std::pair<float, int> compares.
__device__ bool pair_less(float av, int ai, float bv, int bi) { return av < bv || (!(bv < av) && ai < bi); }

__global__ void argmax_forward_kernel(int64_t positions, int dim, int inner, int top_k, bool indices_and_values,
                                      bool out_values, const float* x, float* y) {
  // x: (outer, dim, inner) with positions = outer * inner; y: see argmax_forward
  for (int64_t p = first_index(); p < positions; p += grid_stride()) {
    const int64_t o = p / inner, i = p % inner;
    const float* column = x + o * dim * inner + i;  // column[c * inner]: (dim)
    // The j-th pick is the largest pair below the (j-1)-th: pairs are distinct.
    float prev_value = 0.f;
    int prev_index = -1;  // -1: no pick yet
    for (int j = 0; j < top_k; ++j) {
      float best_value = 0.f;
      int best_index = -1;
      for (int c = 0; c < dim; ++c) {
        const float v = column[static_cast<int64_t>(c) * inner];
        if (prev_index >= 0 && !pair_less(v, c, prev_value, prev_index)) continue;
        if (best_index < 0 || pair_less(best_value, best_index, v, c)) {
          best_value = v;
          best_index = c;
        }
      }
      if (indices_and_values) {
        y[2 * o * top_k + j] = static_cast<float>(best_index);
        y[2 * o * top_k + top_k + j] = best_value;
      } else {
        y[(o * top_k + j) * inner + i] = out_values ? best_value : static_cast<float>(best_index);
      }
      prev_value = best_value;
      prev_index = best_index;
    }
  }
}

}  // namespace

void reduction_forward(const CudaContext& ctx, int num, int dim, Reduce op, float coeff, const float* x, float* y) {
  if (num <= 0) return;
  reduction_forward_kernel<<<num < 4096 ? num : 4096, kThreads, 0, stream_of(ctx)>>>(num, dim, op, coeff, x, y);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void reduction_backward(const CudaContext& ctx, int num, int dim, Reduce op, float coeff, const float* x,
                        const float* dy, float* dx) {
  launch(ctx, static_cast<int64_t>(num) * dim, reduction_backward_kernel, dim, op, coeff, x, dy, dx);
}

void tile_forward(const CudaContext& ctx, int outer, int tiles, int inner, const float* x, float* y) {
  launch(ctx, static_cast<int64_t>(outer) * tiles * inner, tile_forward_kernel, tiles, inner, x, y);
}

void tile_backward(const CudaContext& ctx, int outer, int tiles, int inner, const float* dy, float* dx) {
  launch(ctx, static_cast<int64_t>(outer) * inner, tile_backward_kernel, tiles, inner, dy, dx);
}

void crop_forward(const CudaContext& ctx, int64_t n, const CropWindow& w, const float* big, float* small) {
  launch(ctx, n, crop_forward_kernel, w, big, small);
}

void crop_backward(const CudaContext& ctx, int64_t n, int64_t big_count, const CropWindow& w, const float* small,
                   float* big) {
  if (big_count <= 0) return;
  CREMA_CUDA_CHECK(cudaMemsetAsync(big, 0, sizeof(float) * static_cast<size_t>(big_count), stream_of(ctx)));
  launch(ctx, n, crop_backward_kernel, w, small, big);
}

BadIndex find_bad_index(const CudaContext& ctx, int n, const float* values, int limit, IndexRule rule,
                        float* scratch) {
  if (n <= 0) return {};
  find_bad_index_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(n, values, limit, rule, scratch);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  float host[3] = {0.f, 0.f, 0.f};
  CREMA_CUDA_CHECK(cudaMemcpyAsync(host, scratch, sizeof(host), cudaMemcpyDeviceToHost, stream_of(ctx)));
  CREMA_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
  if (host[0] < 0.f) return {};
  return {static_cast<int64_t>(host[0]) * 65536 + static_cast<int64_t>(host[1]), host[2]};
}

void batch_reindex_forward(const CudaContext& ctx, int items, int inner, const float* x, const float* index,
                           float* y) {
  launch(ctx, static_cast<int64_t>(items) * inner, batch_reindex_forward_kernel, inner, x, index, y);
}

void add_rows_by_index(const CudaContext& ctx, int m, int n, int out_rows, const float* rows, const float* index,
                       int* scratch, float* out) {
  if (m <= 0) return;
  int* start = scratch;                // (out_rows + 1)
  int* cursor = start + out_rows + 1;  // (out_rows)
  int* order = cursor + out_rows;      // (m)
  index_sort_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(m, out_rows, index, start, cursor, order);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
  // m * n threads, of which the first position of each row's run does the work.
  launch(ctx, static_cast<int64_t>(m) * n, add_sorted_rows_kernel, n, out_rows, index, start, order, rows, out);
}

void sigmoid_cross_entropy_forward(const CudaContext& ctx, int n, const float* x, const float* t,
                                   const TargetRule& rule, float* loss, float* normalizer) {
  sigmoid_cross_entropy_forward_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(n, x, t, rule, loss, normalizer);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void sigmoid_cross_entropy_backward(const CudaContext& ctx, int n, const float* p, const float* t,
                                    const TargetRule& rule, const float* top_diff, const float* normalizer,
                                    float* dx) {
  launch(ctx, n, sigmoid_cross_entropy_backward_kernel, p, t, rule, top_diff, normalizer, dx);
}

void multinomial_logistic_forward(const CudaContext& ctx, int num, int dim, float threshold, const float* p,
                                  const float* label, float* loss) {
  multinomial_logistic_forward_kernel<<<1, kThreads, 0, stream_of(ctx)>>>(num, dim, threshold, p, label, loss);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void multinomial_logistic_backward(const CudaContext& ctx, int num, int dim, float threshold, const float* p,
                                   const float* label, const float* top_diff, float* dp) {
  launch(ctx, static_cast<int64_t>(num) * dim, multinomial_logistic_backward_kernel, num, dim, threshold, p, label,
         top_diff, dp);
}

void argmax_forward(const CudaContext& ctx, int outer, int dim, int inner, int top_k, bool indices_and_values,
                    bool out_values, const float* x, float* y) {
  launch(ctx, static_cast<int64_t>(outer) * inner, argmax_forward_kernel, dim, inner, top_k, indices_and_values,
         out_values, x, y);
}

}  // namespace crema::cuda
