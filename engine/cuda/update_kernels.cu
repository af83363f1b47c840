// The update rules of engine/update_rules.cpp as device kernels, one thread per
// element in grid-stride loops, with the CPU pipeline's order of float operations
// (this file is compiled with --fmad=false, as the CPU's with -ffp-contract=off: a
// fused multiply-add rounds once where the CPU rounds twice): one kernel per rule (a
// template over the rule) makes a parameter's whole step.
#include <exception>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/cuda/grid.hpp"
#include "engine/cuda/update_kernels.hpp"

namespace crema::cuda {

namespace {
// The rules: each turns the (regularised) gradient into the step, updating its
// histories h1 and h2 (h2 is a scratch value for one-history rules).
struct Sgd {
  float rate, mu;
  __device__ float operator()(float g, float& h1, float&) const {
    h1 = rate * g + mu * h1;  // V = μV + rate·g
    return h1;
  }
};
struct Nesterov {
  float rate, mu;
  __device__ float operator()(float g, float& h1, float&) const {
    const float previous = h1;
    h1 = rate * g + mu * previous;
    return (1.f + mu) * h1 - mu * previous;
  }
};
struct AdaGrad {
  float rate, delta;
  __device__ float operator()(float g, float& h1, float&) const {
    h1 += g * g;
    return rate * (g / (sqrtf(h1) + delta));
  }
};
struct RmsProp {
  float rate, rho, delta;
  __device__ float operator()(float g, float& h1, float&) const {
    h1 = (1.f - rho) * (g * g) + rho * h1;
    return rate * (g / (sqrtf(h1) + delta));
  }
};
struct AdaDelta {
  float rate, mu, delta;
  __device__ float operator()(float g, float& h1, float& h2) const {
    h1 = (1.f - mu) * (g * g) + mu * h1;
    const float u = g * sqrtf((delta + h2) / (delta + h1));
    h2 = (1.f - mu) * (u * u) + mu * h2;
    return rate * u;
  }
};
struct Adam {
  float scale, b1, b2, delta;
  __device__ float operator()(float g, float& h1, float& h2) const {  // h1 = m, h2 = v
    h1 = (1.f - b1) * g + b1 * h1;
    h2 = (1.f - b2) * (g * g) + b2 * h2;
    return scale * (h1 / (sqrtf(h2) + delta));
  }
};

// coeff·w, or coeff·sign(w) with l1.
__device__ float decay_term(float coeff, float w, bool l1) {
  return l1 ? coeff * static_cast<float>((w > 0.f) - (w < 0.f)) : coeff * w;
}

template <typename Rule>
__global__ void step_kernel(int64_t n, Rule rule, StepDecay d, float* w, float* g, float* h1, float* h2) {
  // w, g, h1: (n); h2: (n) or null
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float wi = w[i];
    float gi = g[i];
    if (d.coupled != 0.f) gi += decay_term(d.coupled, wi, d.l1);
    float first = h1[i], second = h2 ? h2[i] : 0.f;
    float step = rule(gi, first, second);
    if (d.decoupled != 0.f) step += decay_term(d.decoupled, wi, d.l1);
    h1[i] = first;
    if (h2) h2[i] = second;
    g[i] = step;
    // Rounded on its own, as the CPU's loop and Caffe's axpy subtract the stored step:
    // nvcc would otherwise fuse the rule's last product into this subtraction.
    w[i] = __fsub_rn(wi, step);
  }
}

template <typename Rule>
void step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, Rule rule) {
  launch(ctx, b.n, step_kernel<Rule>, rule, d, b.w, b.g, b.h1, b.h2);
}

// The sum of each thread's `s` over its block, in a tree fixed by the thread indices
// alone (not by the order the threads run in). All kThreads threads call it.
__device__ double block_sum(double s) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  return partial[0];
}

// partials[block] = the block's grid-stride share of Σ x². x: (n); partials: (blocks)
__global__ void sumsq_blocks_kernel(int64_t n, const float* x, double* partials) {
  double s = 0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) s += static_cast<double>(x[i]) * x[i];
  const double total = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: sum[0] = Σ partials. partials: (n); sum: (1)
__global__ void sum_partials_kernel(int n, const double* partials, double* sum) {
  double s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partials[i];
  const double total = block_sum(s);
  if (threadIdx.x == 0) sum[0] = total;
}

}  // namespace

void gpu_sgd_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum) {
  step(ctx, b, d, Sgd{rate, momentum});
}
void gpu_nesterov_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum) {
  step(ctx, b, d, Nesterov{rate, momentum});
}
void gpu_adagrad_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float delta) {
  step(ctx, b, d, AdaGrad{rate, delta});
}
void gpu_rmsprop_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float rms_decay,
                      float delta) {
  step(ctx, b, d, RmsProp{rate, rms_decay, delta});
}
void gpu_adadelta_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum,
                       float delta) {
  step(ctx, b, d, AdaDelta{rate, momentum, delta});
}
void gpu_adam_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float scale, float beta1,
                   float beta2, float delta) {
  step(ctx, b, d, Adam{scale, beta1, beta2, delta});
}

double gpu_sumsq(const CudaContext& ctx, const DeviceSpan* spans, int count) {
  const cudaStream_t stream = stream_of(ctx);
  // Each block writes its partial sum to a slot of its own, and one block adds the slots
  // up in a fixed order: atomic additions would add them in the order the blocks finish,
  // so the norm, and with it clip_gradients' scale, would differ between two runs in
  // the last bits, and a resumed run would not repeat an uninterrupted one.
  int slots = 0;
  for (int i = 0; i < count; ++i)
    if (spans[i].n > 0) slots += blocks_for(spans[i].n);
  // The scratch comes from the caching allocator (safe: it is used on the compute
  // stream only), so steady-state steps do not cudaMalloc.
  struct Scratch {
    cudaStream_t stream;
    int device = -1;
    void* p;
    Scratch(cudaStream_t s, size_t bytes) : stream(s), p(alloc_device(bytes, &device)) {}
    ~Scratch() {
      // Left by an error, the queued kernels may still use the block, which the cache
      // would hand out again at once: let them finish first.
      if (std::uncaught_exceptions() > 0) (void)cudaStreamSynchronize(stream);
      free_device(p, device);
    }
  } scratch(stream, sizeof(double) * (static_cast<size_t>(slots) + 1));
  double* sum = static_cast<double*>(scratch.p);  // sum: (1), then the partials: (slots)
  double* partials = sum + 1;
  int offset = 0;
  for (int i = 0; i < count; ++i) {
    if (spans[i].n <= 0) continue;
    const int blocks = blocks_for(spans[i].n);
    sumsq_blocks_kernel<<<blocks, kThreads, 0, stream>>>(spans[i].n, spans[i].x, partials + offset);
    CREMA_CUDA_LAUNCHED(stream);
    offset += blocks;
  }
  double result = 0;
  if (slots > 0) {
    sum_partials_kernel<<<1, kThreads, 0, stream>>>(slots, partials, sum);
    CREMA_CUDA_LAUNCHED(stream);
    CREMA_CUDA_CHECK(cudaMemcpyAsync(&result, sum, sizeof(double), cudaMemcpyDeviceToHost, stream));
    CREMA_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return result;
}

}  // namespace crema::cuda
