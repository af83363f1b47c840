// Update rules: what each solver `type` does with one parameter's gradient once the
// common pipeline (÷ iter_size, clipping, regularisation) has run. A rule turns the
// gradient g into the step (the net then does w −= step) and keeps its per-parameter
// history. The rules are Caffe's sgd_solvers (SGD, Nesterov, AdaGrad, RMSProp,
// AdaDelta, Adam) with their exact formulas, plus AdamW; see
// ../shared/reference/caffe-compat.md. rate below is the local rate lr·lr_mult.
//   SGD       V = μV + rate·g;                        step = V
//   Nesterov  V' = μV + rate·g;                       step = (1+μ)V' − μV
//   AdaGrad   H += g²;                                step = rate·g/(√H + δ)
//   RMSProp   H = ρH + (1−ρ)g²   (ρ = rms_decay);     step = rate·g/(√H + δ)
//   AdaDelta  H = μH + (1−μ)g²; u = g·√((D+δ)/(H+δ)); D = μD + (1−μ)u²; step = rate·u
//   Adam      m = β1·m + (1−β1)g; v = β2·v + (1−β2)g²  (β1 = momentum, β2 = momentum2);
//             step = rate·√(1−β2ᵗ)/(1−β1ᵗ)·m/(√v + δ), t = iter + 1
//   AdamW     Adam's step + rate·wd·decay_mult·w: the decay is decoupled from the
//             moments (Loshchilov & Hutter) instead of being added to g.
#pragma once

#include <string>
#include <vector>

#include "engine/blob.hpp"
#include "engine/context.hpp"

namespace crema {

class Net;
class Node;
struct SolverSpec;

// One parameter's update, in place.
struct UpdateInput {
  int n = 0;             // elements of the parameter
  float rate = 0.f;      // local rate lr·lr_mult
  int t = 1;             // updates including this one (iter + 1), for Adam's bias correction
  float* w = nullptr;    // (n) the parameter, stepped in place (w −= step)
  float* g = nullptr;    // (n) gradient in, step out
  float* h1 = nullptr;   // (n) first history: momentum V, H, Adam's m
  float* h2 = nullptr;   // (n) second history: AdaDelta's D, Adam's v; null for one-history rules
  // Regularisation: coupled is added to g before the rule (Caffe's weight decay:
  // wd·decay_mult), decoupled to the step after it (AdamW: rate·wd·decay_mult); each
  // times w, or sign(w) with l1.
  float coupled_decay = 0.f, decoupled_decay = 0.f;
  bool l1 = false;
};

struct UpdateRule {
  const char* type;        // the solver `type` value
  const char* legacy;      // Caffe's `solver_type` enum spelling, "" when Caffe has none
  int histories;           // history blobs per learnable parameter (Caffe's snapshot layout)
  int squared_from;        // the history sets from this one on hold running squares, never
                           // negative (= histories when none do): a resume's check of the type
  bool decoupled_decay;    // weight decay is applied to w beside the step, not added to g
  // The rule alone: g (regularised) becomes the step, the histories are updated.
  void (*compute)(const SolverSpec& spec, const UpdateInput& in);
  // The whole step on the device in one kernel (in's pointers are device pointers):
  // decay, rule, decoupled decay, w −= step. Null in a build without CUDA, where no GPU
  // Context can exist.
  void (*step_gpu)(const cuda::CudaContext& ctx, const SolverSpec& spec, const UpdateInput& in);
};

// Every rule, in Caffe's SolverType enum order, then crema's extensions.
const std::vector<UpdateRule>& update_rules();
// The rule for a `type` value; throws Error for an unknown one (parsing has checked it).
const UpdateRule& update_rule(const std::string& type);
// The rule a legacy `solver_type` value (NESTEROV, ADAM, …) names; a ConfigError at
// the value, listing the spellings, for any other.
const UpdateRule& legacy_update_rule(const Node& solver_type);

// The vector steps of the solver's update pipeline on the Context's device: the CPU
// loops, or device kernels on a GPU, where the pointers handed out are device pointers
// and no parameter, gradient or history crosses the bus (only the clipping norm
// comes back, as in Caffe).
class UpdateOps {
 public:
  explicit UpdateOps(const Context& ctx) : cuda_(ctx.on_gpu() ? ctx.cuda() : nullptr) {}

  const float* data(Blob& b) const { return cuda_ ? b.gpu_data() : b.cpu_data(); }
  float* mutable_data(Blob& b) const { return cuda_ ? b.mutable_gpu_data() : b.mutable_cpu_data(); }
  float* mutable_diff(Blob& b) const { return cuda_ ? b.mutable_gpu_diff() : b.mutable_cpu_diff(); }

  void scale(int n, float alpha, float* x) const;  // x: (n)
  // Σ over the blobs of Σ diff², in double.
  double sumsq_diffs(const std::vector<Blob*>& params) const;
  // One parameter's step: g += coupled decay; the rule makes g the step; step +=
  // decoupled decay; w −= step. On a GPU in one kernel, on the CPU loop by loop.
  // False when the CPU's step left a weight NaN or infinite (checked in its last loop, at no
  // extra pass); the device's weights are not read back, and Solver::snapshot checks them.
  bool step(const UpdateRule& rule, const SolverSpec& spec, const UpdateInput& in) const;
  // Zeroes the learnable parameters' gradients.
  void clear_param_diffs(Net& net) const;
  // to = from (values; `to` takes from's shape), on the Context's device.
  void copy(const Blob& from, Blob& to) const;

 private:
  cuda::CudaContext* cuda_;  // null on the CPU
};

}  // namespace crema
