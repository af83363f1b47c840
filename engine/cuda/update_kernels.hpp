// Device kernels of the solver's update pipeline (engine/update_rules.hpp holds the
// formulas and the CPU loops they mirror). Each rule works in place on one
// parameter: g (n) comes in as the regularised gradient and leaves as the step,
// h1/h2 (n) are its histories. Every pointer is a device pointer; the work is queued
// on the context's stream.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

void gpu_sgd_update(const CudaContext& ctx, int n, float rate, float momentum, float* g, float* h1);
void gpu_nesterov_update(const CudaContext& ctx, int n, float rate, float momentum, float* g, float* h1);
void gpu_adagrad_update(const CudaContext& ctx, int n, float rate, float delta, float* g, float* h1);
void gpu_rmsprop_update(const CudaContext& ctx, int n, float rate, float rms_decay, float delta, float* g, float* h1);
void gpu_adadelta_update(const CudaContext& ctx, int n, float rate, float momentum, float delta, float* g, float* h1,
                         float* h2);
// scale = rate·√(1−β2ᵗ)/(1−β1ᵗ), computed on the host as the CPU rule does.
void gpu_adam_update(const CudaContext& ctx, int n, float scale, float beta1, float beta2, float delta, float* g,
                     float* h1, float* h2);

// out += coeff·w (L2) or coeff·sign(w) (L1); w, out: (n).
void gpu_add_decay(const CudaContext& ctx, int n, float coeff, const float* w, bool l1, float* out);

// Σ x² over several arrays, reduced on the device in double; only the sum comes back
// to the host (the one scalar that gradient clipping reads, as in Caffe).
struct DeviceSpan {
  int n;           // elements
  const float* x;  // (n)
};
double gpu_sumsq(const CudaContext& ctx, const DeviceSpan* spans, int count);

}  // namespace crema::cuda
