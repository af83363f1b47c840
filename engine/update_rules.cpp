#include "engine/update_rules.hpp"

#include <cmath>

#include "engine/config.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "engine/cuda/update_kernels.hpp"
#endif

namespace crema {

namespace {

// The loops keep Caffe's order of float operations (its caffe_powx / axpby / div
// sequence), so a step differs from Caffe's by rounding at most.

void sgd(const SolverSpec& s, const UpdateInput& in) {
  cpu_axpby(in.n, in.rate, in.g, s.momentum, in.h1);  // V = μV + rate·g
  cpu_copy(in.n, in.h1, in.g);
}

void nesterov(const SolverSpec& s, const UpdateInput& in) {
  const float mu = s.momentum;
  for (int i = 0; i < in.n; ++i) {
    const float previous = in.h1[i];
    in.h1[i] = in.rate * in.g[i] + mu * previous;
    in.g[i] = (1.f + mu) * in.h1[i] - mu * previous;  // step back by μV, over-step by (1+μ)V'
  }
}

void adagrad(const SolverSpec& s, const UpdateInput& in) {
  for (int i = 0; i < in.n; ++i) {
    in.h1[i] += in.g[i] * in.g[i];
    in.g[i] = in.rate * (in.g[i] / (std::sqrt(in.h1[i]) + s.delta));
  }
}

void rmsprop(const SolverSpec& s, const UpdateInput& in) {
  const float rho = s.rms_decay;
  for (int i = 0; i < in.n; ++i) {
    in.h1[i] = (1.f - rho) * (in.g[i] * in.g[i]) + rho * in.h1[i];
    in.g[i] = in.rate * (in.g[i] / (std::sqrt(in.h1[i]) + s.delta));
  }
}

void adadelta(const SolverSpec& s, const UpdateInput& in) {
  const float mu = s.momentum;
  for (int i = 0; i < in.n; ++i) {
    in.h1[i] = (1.f - mu) * (in.g[i] * in.g[i]) + mu * in.h1[i];
    // The RMS of past updates over the RMS of gradients; δ keeps both off zero.
    const float u = in.g[i] * std::sqrt((s.delta + in.h2[i]) / (s.delta + in.h1[i]));
    in.h2[i] = (1.f - mu) * (u * u) + mu * in.h2[i];
    in.g[i] = in.rate * u;  // Caffe scales by the rate after D is updated
  }
}

// Adam's rate·√(1−β2ᵗ)/(1−β1ᵗ). Caffe computes the bias correction in double
// (pow(float, int) promotes) and stores it as float.
float adam_scale(const SolverSpec& s, const UpdateInput& in) {
  const float correction = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(s.momentum2), in.t)) /
                                              (1.0 - std::pow(static_cast<double>(s.momentum), in.t)));
  return in.rate * correction;
}

void adam(const SolverSpec& s, const UpdateInput& in) {
  const float b1 = s.momentum, b2 = s.momentum2;
  const float scale = adam_scale(s, in);
  for (int i = 0; i < in.n; ++i) {
    in.h1[i] = (1.f - b1) * in.g[i] + b1 * in.h1[i];
    in.h2[i] = (1.f - b2) * (in.g[i] * in.g[i]) + b2 * in.h2[i];
    in.g[i] = scale * (in.h1[i] / (std::sqrt(in.h2[i]) + s.delta));
  }
}

#ifdef CREMA_WITH_CUDA
// The rules above as device kernels, each making the whole step of a parameter
// (engine/cuda/update_kernels.cu).
cuda::StepBuffers buffers(const UpdateInput& in) { return {in.n, in.w, in.g, in.h1, in.h2}; }
cuda::StepDecay decay(const UpdateInput& in) { return {in.coupled_decay, in.decoupled_decay, in.l1}; }
void sgd_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_sgd_step(c, buffers(in), decay(in), in.rate, s.momentum);
}
void nesterov_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_nesterov_step(c, buffers(in), decay(in), in.rate, s.momentum);
}
void adagrad_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_adagrad_step(c, buffers(in), decay(in), in.rate, s.delta);
}
void rmsprop_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_rmsprop_step(c, buffers(in), decay(in), in.rate, s.rms_decay, s.delta);
}
void adadelta_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_adadelta_step(c, buffers(in), decay(in), in.rate, s.momentum, s.delta);
}
void adam_gpu(const cuda::CudaContext& c, const SolverSpec& s, const UpdateInput& in) {
  cuda::gpu_adam_step(c, buffers(in), decay(in), adam_scale(s, in), s.momentum, s.momentum2, s.delta);
}
#else
constexpr void (*sgd_gpu)(const cuda::CudaContext&, const SolverSpec&, const UpdateInput&) = nullptr;
constexpr auto nesterov_gpu = sgd_gpu, adagrad_gpu = sgd_gpu, rmsprop_gpu = sgd_gpu, adadelta_gpu = sgd_gpu,
               adam_gpu = sgd_gpu;
#endif

// The device's kernels exist only with CUDA; a GPU Context cannot be made without it.
[[noreturn]] void no_cuda() { throw Error("a GPU update was asked of a crema built without CUDA"); }

}  // namespace

const std::vector<UpdateRule>& update_rules() {
  static const std::vector<UpdateRule> rules = {
      {"SGD", "SGD", 1, 1, false, sgd, sgd_gpu},  // momentum: signed
      {"Nesterov", "NESTEROV", 1, 1, false, nesterov, nesterov_gpu},
      {"AdaGrad", "ADAGRAD", 1, 0, false, adagrad, adagrad_gpu},      // sum of squared gradients
      {"RMSProp", "RMSPROP", 1, 0, false, rmsprop, rmsprop_gpu},      // mean of squared gradients
      {"AdaDelta", "ADADELTA", 2, 0, false, adadelta, adadelta_gpu},  // of squared gradients and steps
      {"Adam", "ADAM", 2, 1, false, adam, adam_gpu},                  // m signed, v squared
      // AdamW's step is Adam's; the solver adds the decoupled decay beside it.
      {"AdamW", "", 2, 1, true, adam, adam_gpu},
  };
  return rules;
}

const UpdateRule& update_rule(const std::string& type) {
  for (const UpdateRule& r : update_rules())
    if (type == r.type) return r;
  throw Error("unknown solver type '" + type + "'");
}

const UpdateRule& legacy_update_rule(const Node& solver_type) {
  // Caffe's SolverType enum lists the rules in update_rules() order.
  std::vector<std::string> names;
  for (const UpdateRule& r : update_rules())
    if (*r.legacy) names.push_back(r.legacy);
  return update_rules()[static_cast<size_t>(enum_value(solver_type, names, 0))];
}

void UpdateOps::scale(int n, float alpha, float* x) const {
  if (!cuda_) return cpu_scale(n, alpha, x);
#ifdef CREMA_WITH_CUDA
  cuda::gpu_scal(*cuda_, n, alpha, x);
#else
  no_cuda();
#endif
}

double UpdateOps::sumsq_diffs(const std::vector<Blob*>& params) const {
  if (cuda_) {
#ifdef CREMA_WITH_CUDA
    std::vector<cuda::DeviceSpan> spans;
    for (Blob* p : params) spans.push_back({p->count(), p->gpu_diff()});
    return cuda::gpu_sumsq(*cuda_, spans.data(), static_cast<int>(spans.size()));
#else
    no_cuda();
#endif
  }
  double sumsq = 0;
  for (Blob* p : params) sumsq += p->sumsq_diff();
  return sumsq;
}

namespace {
// out += coeff·w (L2) or coeff·sign(w) (L1); w, out: (n). A loop of its own, not
// OpenBLAS's saxpy, whose kernels fuse the multiply-add: rounded twice, as on the GPU.
void add_decay(int n, float coeff, const float* w, bool l1, float* out) {
  if (l1) {
#pragma omp parallel for simd if (n >= kParallelMinElements)
    for (int j = 0; j < n; ++j) out[j] += coeff * static_cast<float>((w[j] > 0.f) - (w[j] < 0.f));
  } else {
#pragma omp parallel for simd if (n >= kParallelMinElements)
    for (int j = 0; j < n; ++j) out[j] += coeff * w[j];
  }
}
}  // namespace

bool UpdateOps::step(const UpdateRule& rule, const SolverSpec& spec, const UpdateInput& in) const {
  if (cuda_) {
    if (!rule.step_gpu) no_cuda();
    rule.step_gpu(*cuda_, spec, in);
    return true;
  }
  if (in.coupled_decay != 0.f) add_decay(in.n, in.coupled_decay, in.w, in.l1, in.g);
  rule.compute(spec, in);
  if (in.decoupled_decay != 0.f) add_decay(in.n, in.decoupled_decay, in.w, in.l1, in.g);
  int bad = 0;  // or-ed, not branched on, so that the loop stays vectorised
  for (int i = 0; i < in.n; ++i) {
    in.w[i] -= in.g[i];
    bad |= !(in.w[i] - in.w[i] == 0.f);  // NaN for NaN and ±inf
  }
  return bad == 0;
}

void UpdateOps::clear_param_diffs(Net& net) const {
  if (!cuda_) return net.clear_param_diffs();
#ifdef CREMA_WITH_CUDA
  for (Blob* p : net.learnable_params()) cuda::gpu_set(*cuda_, p->count(), 0.f, p->mutable_gpu_diff());
#else
  no_cuda();
#endif
}

void UpdateOps::copy(const Blob& from, Blob& to) const {
  to.reshape_like(from);
  if (!cuda_) return to.copy_from(from);
#ifdef CREMA_WITH_CUDA
  if (from.count() > 0) cuda::gpu_copy(*cuda_, from.count(), from.gpu_data(), to.mutable_gpu_data());
#else
  no_cuda();
#endif
}

}  // namespace crema
