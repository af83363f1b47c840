// Device kernels of the solver's update pipeline (engine/update_rules.hpp holds the
// formulas and the CPU loops they mirror). Each rule's kernel makes one parameter's
// whole step in one pass, element by element in the CPU pipeline's order of float
// operations: g += coupled·w (or ·sign(w) with l1, Caffe's regularisation); the rule
// turns g into the step and updates the histories; step += decoupled·w (·sign(w),
// AdamW's decay); g = step; w −= step. One launch per parameter instead of four keeps
// a small net's step from being launch-bound. Every pointer is a device pointer; the
// work is queued on the context's stream.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

struct StepBuffers {
  int n = 0;            // elements
  float* w = nullptr;   // (n) parameter, stepped in place
  float* g = nullptr;   // (n) gradient in, step out
  float* h1 = nullptr;  // (n) first history
  float* h2 = nullptr;  // (n) second history; null for one-history rules
};
struct StepDecay {
  float coupled = 0.f;    // added to g before the rule
  float decoupled = 0.f;  // added to the step after it
  bool l1 = false;        // coeff·sign(w) instead of coeff·w
};

void gpu_sgd_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum);
void gpu_nesterov_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum);
void gpu_adagrad_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float delta);
void gpu_rmsprop_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float rms_decay,
                      float delta);
void gpu_adadelta_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float rate, float momentum,
                       float delta);
// scale = rate·√(1−β2ᵗ)/(1−β1ᵗ), computed on the host as the CPU rule does.
void gpu_adam_step(const CudaContext& ctx, const StepBuffers& b, const StepDecay& d, float scale, float beta1,
                   float beta2, float delta);

// Σ x² over several arrays, reduced on the device in double in the same order on every
// run (block partials, then one block); only the sum comes back
// to the host (the one scalar that gradient clipping reads, as in Caffe).
struct DeviceSpan {
  int n;           // elements
  const float* x;  // (n)
};
double gpu_sumsq(const CudaContext& ctx, const DeviceSpan* spans, int count);

}  // namespace crema::cuda
