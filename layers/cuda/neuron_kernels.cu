// Device kernels of the element-wise layers (see neuron_kernels.hpp). Three generic
// grid-stride kernels carry most layers, each given a small functor with the layer's
// formula; Swish, PReLU and Dropout have their own. Indices are int64 so that
// i + stride cannot overflow for any blob size. Where the CPU code uses std::min /
// std::max, the functors spell out the same comparison so that NaN inputs give the
// same result on both devices (fminf/fmaxf would drop the NaN).
#include "engine/cuda/grid.hpp"
#include "layers/cuda/neuron_kernels.hpp"

namespace crema::cuda {

namespace {

// std::min(a, b) and std::max(a, b) exactly: (b < a) ? b : a and (a < b) ? b : a.
__device__ float std_min(float a, float b) { return b < a ? b : a; }
__device__ float std_max(float a, float b) { return a < b ? b : a; }

// y_i = f(x_i).
template <typename F>
__global__ void map_kernel(int64_t n, F f, const float* x, float* y) {  // x, y: (n), may alias
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = f(x[i]);
}

// dx_i = dy_i * g(v_i), as map_backward in elementwise_map.hpp.
template <typename G>
__global__ void map_backward_kernel(int64_t n, G g, const float* v, const float* dy,
                                    float* dx) {  // v, dy, dx: (n), dx may alias dy
  for (int64_t i = first_index(); i < n; i += grid_stride()) dx[i] = dy[i] * g(v[i]);
}

// dx_i = g(v_i, w_i, dy_i), for gradients that need two values.
template <typename G>
__global__ void map2_backward_kernel(int64_t n, G g, const float* v, const float* w, const float* dy,
                                     float* dx) {  // v, w, dy, dx: (n), dx may alias dy
  for (int64_t i = first_index(); i < n; i += grid_stride()) dx[i] = g(v[i], w[i], dy[i]);
}

// ---- the layers' formulas ----------------------------------------------------------

struct ReluForward {
  float slope;
  __device__ float operator()(float x) const { return x > 0.f ? x : slope * x; }
};
struct ReluDerivative {  // of the top, as the CPU code reads it
  float slope;
  __device__ float operator()(float y) const { return y > 0.f ? 1.f : slope; }
};

struct SigmoidForward {
  __device__ float operator()(float x) const { return 0.5f * tanhf(0.5f * x) + 0.5f; }
};
struct SigmoidDerivative {
  __device__ float operator()(float y) const { return y * (1.f - y); }
};

struct TanhForward {
  __device__ float operator()(float x) const { return tanhf(x); }
};
struct TanhDerivative {
  __device__ float operator()(float y) const { return 1.f - y * y; }
};

struct AbsForward {
  __device__ float operator()(float x) const { return fabsf(x); }
};
struct AbsDerivative {
  __device__ float operator()(float x) const { return x > 0.f ? 1.f : x < 0.f ? -1.f : 0.f; }
};

struct BnllForward {
  __device__ float operator()(float x) const {
    return x > 0.f ? x + logf(1.f + expf(-x)) : logf(1.f + expf(x));
  }
};
struct BnllDerivative {
  float threshold;
  __device__ float operator()(float x) const {
    const float e = expf(std_min(x, threshold));
    return e / (e + 1.f);
  }
};

struct EluForward {
  float alpha;
  __device__ float operator()(float x) const { return std_max(x, 0.f) + alpha * (expf(std_min(x, 0.f)) - 1.f); }
};
struct EluGradient {
  float alpha;
  __device__ float operator()(float x, float y, float dy) const { return x > 0.f ? dy : dy * (y + alpha); }
};

struct SwishGradient {
  float beta;
  __device__ float operator()(float s, float y, float dy) const { return dy * (beta * y + s * (1.f - beta * y)); }
};

struct ClipForward {
  float lo, hi;
  __device__ float operator()(float x) const { return std_max(lo, std_min(x, hi)); }
};
struct ClipDerivative {
  float lo, hi;
  __device__ float operator()(float x) const { return x >= lo && x <= hi ? 1.f : 0.f; }
};

struct ExpForward {
  float inner, outer;
  __device__ float operator()(float x) const { return outer * expf(inner * x); }
};
struct ExpDerivative {
  float inner;
  __device__ float operator()(float y) const { return y * inner; }
};

struct LogForward {
  float base_scale, scale, shift;
  __device__ float operator()(float x) const { return base_scale * logf(scale * x + shift); }
};
struct LogDerivative {
  float numerator, scale, shift;
  __device__ float operator()(float x) const { return numerator / (scale * x + shift); }
};

struct PowerForward {
  float power, scale, shift;
  __device__ float operator()(float x) const { return powf(shift + scale * x, power); }
};
struct PowerDerivative {
  float power, scale, shift, diff_scale;
  __device__ float operator()(float x) const { return diff_scale * powf(shift + scale * x, power - 1.f); }
};

struct ThresholdForward {
  float threshold;
  __device__ float operator()(float x) const { return x > threshold ? 1.f : 0.f; }
};

// ---- layers with their own kernels --------------------------------------------------

__global__ void swish_forward_kernel(int64_t n, float beta, const float* x, float* s,
                                     float* y) {  // x, s, y: (n), y may alias x
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float xi = x[i];
    const float si = 0.5f * tanhf(0.5f * (beta * xi)) + 0.5f;
    s[i] = si;
    y[i] = xi * si;
  }
}

// The slope of element i of a bottom seen as (outer, channels, dim).
__device__ int64_t channel_of(int64_t i, int channels, int64_t dim) { return (i / dim) % channels; }

__global__ void prelu_forward_kernel(int64_t n, int channels, int64_t dim, const float* a, const float* x,
                                     float* y) {  // a: (channels); x, y: (n), y may alias x
  for (int64_t i = first_index(); i < n; i += grid_stride())
    y[i] = x[i] > 0.f ? x[i] : a[channel_of(i, channels, dim)] * x[i];
}

__global__ void prelu_backward_input_kernel(int64_t n, int channels, int64_t dim, const float* a, const float* x,
                                            const float* dy, float* dx) {  // a: (channels); (n) else
  for (int64_t i = first_index(); i < n; i += grid_stride())
    dx[i] = x[i] > 0.f ? dy[i] : a[channel_of(i, channels, dim)] * dy[i];
}

// Block c sums dy x over channel c's elements with x <= 0, then adds it to da[c].
// Launched with kThreads threads (a power of two, for the tree reduction).
__global__ void prelu_backward_slope_kernel(int64_t n, int channels, int64_t dim, const float* x, const float* dy,
                                            float* da) {  // x, dy: (outer, channels, dim); da: (channels)
  __shared__ float partial[kThreads];
  const int64_t c = blockIdx.x;
  const int64_t per_channel = n / channels;  // outer * dim
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
    const int64_t i = (j / dim) * channels * dim + c * dim + j % dim;
    if (x[i] <= 0.f) sum += dy[i] * x[i];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) da[c] += partial[0];
}

// splitmix64's output function on the (index + 1)-th state of a stream started at
// `seed`: a well-mixed 64-bit value per (seed, index), no state to carry.
__device__ bool dropout_keeps(uint64_t seed, int64_t i, float keep) {
  uint64_t z = seed + (static_cast<uint64_t>(i) + 1u) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  // The top 24 bits as a float in [0, 1 - 2^-24], exactly representable.
  const float u = static_cast<float>(z >> 40) * (1.f / 16777216.f);
  return u < keep;
}

__global__ void dropout_forward_kernel(int64_t n, uint64_t seed, float keep, float scale, const float* x,
                                       float* y) {  // x, y: (n), y may alias x
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float mask = dropout_keeps(seed, i, keep) ? 1.f : 0.f;
    // Multiplied rather than selected, as on the CPU, so NaN and Inf stay visible.
    y[i] = x[i] * mask * scale;
  }
}

__global__ void dropout_backward_kernel(int64_t n, uint64_t seed, float keep, float scale, const float* dy,
                                        float* dx) {  // dy, dx: (n), dx may alias dy
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float mask = dropout_keeps(seed, i, keep) ? 1.f : 0.f;
    dx[i] = dy[i] * mask * scale;
  }
}

}  // namespace

void relu_forward(const CudaContext& ctx, int64_t n, float slope, const float* x, float* y) {
  launch(ctx, n, map_kernel<ReluForward>, ReluForward{slope}, x, y);
}
void relu_backward(const CudaContext& ctx, int64_t n, float slope, const float* y, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<ReluDerivative>, ReluDerivative{slope}, y, dy, dx);
}

void sigmoid_forward(const CudaContext& ctx, int64_t n, const float* x, float* y) {
  launch(ctx, n, map_kernel<SigmoidForward>, SigmoidForward{}, x, y);
}
void sigmoid_backward(const CudaContext& ctx, int64_t n, const float* y, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<SigmoidDerivative>, SigmoidDerivative{}, y, dy, dx);
}

void tanh_forward(const CudaContext& ctx, int64_t n, const float* x, float* y) {
  launch(ctx, n, map_kernel<TanhForward>, TanhForward{}, x, y);
}
void tanh_backward(const CudaContext& ctx, int64_t n, const float* y, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<TanhDerivative>, TanhDerivative{}, y, dy, dx);
}

void absval_forward(const CudaContext& ctx, int64_t n, const float* x, float* y) {
  launch(ctx, n, map_kernel<AbsForward>, AbsForward{}, x, y);
}
void absval_backward(const CudaContext& ctx, int64_t n, const float* x, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<AbsDerivative>, AbsDerivative{}, x, dy, dx);
}

void bnll_forward(const CudaContext& ctx, int64_t n, const float* x, float* y) {
  launch(ctx, n, map_kernel<BnllForward>, BnllForward{}, x, y);
}
void bnll_backward(const CudaContext& ctx, int64_t n, float threshold, const float* x, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<BnllDerivative>, BnllDerivative{threshold}, x, dy, dx);
}

void elu_forward(const CudaContext& ctx, int64_t n, float alpha, const float* x, float* y) {
  launch(ctx, n, map_kernel<EluForward>, EluForward{alpha}, x, y);
}
void elu_backward(const CudaContext& ctx, int64_t n, float alpha, const float* x, const float* y, const float* dy,
                  float* dx) {
  launch(ctx, n, map2_backward_kernel<EluGradient>, EluGradient{alpha}, x, y, dy, dx);
}

void swish_forward(const CudaContext& ctx, int64_t n, float beta, const float* x, float* s, float* y) {
  launch(ctx, n, swish_forward_kernel, beta, x, s, y);
}
void swish_backward(const CudaContext& ctx, int64_t n, float beta, const float* s, const float* y, const float* dy,
                    float* dx) {
  launch(ctx, n, map2_backward_kernel<SwishGradient>, SwishGradient{beta}, s, y, dy, dx);
}

void clip_forward(const CudaContext& ctx, int64_t n, float lo, float hi, const float* x, float* y) {
  launch(ctx, n, map_kernel<ClipForward>, ClipForward{lo, hi}, x, y);
}
void clip_backward(const CudaContext& ctx, int64_t n, float lo, float hi, const float* x, const float* dy,
                   float* dx) {
  launch(ctx, n, map_backward_kernel<ClipDerivative>, ClipDerivative{lo, hi}, x, dy, dx);
}

void exp_forward(const CudaContext& ctx, int64_t n, float inner, float outer, const float* x, float* y) {
  launch(ctx, n, map_kernel<ExpForward>, ExpForward{inner, outer}, x, y);
}
void exp_backward(const CudaContext& ctx, int64_t n, float inner, const float* y, const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<ExpDerivative>, ExpDerivative{inner}, y, dy, dx);
}

void log_forward(const CudaContext& ctx, int64_t n, float base_scale, float scale, float shift, const float* x,
                 float* y) {
  launch(ctx, n, map_kernel<LogForward>, LogForward{base_scale, scale, shift}, x, y);
}
void log_backward(const CudaContext& ctx, int64_t n, float numerator, float scale, float shift, const float* x,
                  const float* dy, float* dx) {
  launch(ctx, n, map_backward_kernel<LogDerivative>, LogDerivative{numerator, scale, shift}, x, dy, dx);
}

void power_forward(const CudaContext& ctx, int64_t n, float power, float scale, float shift, const float* x,
                   float* y) {
  launch(ctx, n, map_kernel<PowerForward>, PowerForward{power, scale, shift}, x, y);
}
void power_backward(const CudaContext& ctx, int64_t n, float power, float scale, float shift, float diff_scale,
                    const float* x, const float* dy, float* dx) {
  const PowerDerivative derivative{power, scale, shift, diff_scale};
  launch(ctx, n, map_backward_kernel<PowerDerivative>, derivative, x, dy, dx);
}

void threshold_forward(const CudaContext& ctx, int64_t n, float threshold, const float* x, float* y) {
  launch(ctx, n, map_kernel<ThresholdForward>, ThresholdForward{threshold}, x, y);
}

void prelu_forward(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* a, const float* x,
                   float* y) {
  launch(ctx, n, prelu_forward_kernel, channels, dim, a, x, y);
}

void prelu_backward_input(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* a,
                          const float* x, const float* dy, float* dx) {
  launch(ctx, n, prelu_backward_input_kernel, channels, dim, a, x, dy, dx);
}

void prelu_backward_slope(const CudaContext& ctx, int64_t n, int channels, int64_t dim, const float* x,
                          const float* dy, float* da) {
  if (n <= 0 || channels <= 0) return;
  prelu_backward_slope_kernel<<<channels, kThreads, 0, stream_of(ctx)>>>(n, channels, dim, x, dy, da);
  CREMA_CUDA_LAUNCHED(stream_of(ctx));
}

void dropout_forward(const CudaContext& ctx, int64_t n, uint64_t seed, float keep, float scale, const float* x,
                     float* y) {
  launch(ctx, n, dropout_forward_kernel, seed, keep, scale, x, y);
}

void dropout_backward(const CudaContext& ctx, int64_t n, uint64_t seed, float keep, float scale, const float* dy,
                      float* dx) {
  launch(ctx, n, dropout_backward_kernel, seed, keep, scale, dy, dx);
}

}  // namespace crema::cuda
