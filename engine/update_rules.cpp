#include "engine/update_rules.hpp"

#include <cmath>

#include "engine/config.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "engine/solver.hpp"

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

void adam(const SolverSpec& s, const UpdateInput& in) {
  const float b1 = s.momentum, b2 = s.momentum2;
  // Caffe computes the bias correction in double (pow(float, int) promotes) and stores it as float.
  const float correction = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(b2), in.t)) /
                                              (1.0 - std::pow(static_cast<double>(b1), in.t)));
  const float scale = in.rate * correction;
  for (int i = 0; i < in.n; ++i) {
    in.h1[i] = (1.f - b1) * in.g[i] + b1 * in.h1[i];
    in.h2[i] = (1.f - b2) * (in.g[i] * in.g[i]) + b2 * in.h2[i];
    in.g[i] = scale * (in.h1[i] / (std::sqrt(in.h2[i]) + s.delta));
  }
}

}  // namespace

const std::vector<UpdateRule>& update_rules() {
  static const std::vector<UpdateRule> rules = {
      {"SGD", "SGD", 1, false, sgd},
      {"Nesterov", "NESTEROV", 1, false, nesterov},
      {"AdaGrad", "ADAGRAD", 1, false, adagrad},
      {"RMSProp", "RMSPROP", 1, false, rmsprop},
      {"AdaDelta", "ADADELTA", 2, false, adadelta},
      {"Adam", "ADAM", 2, false, adam},
      // AdamW's step is Adam's; the solver adds the decoupled decay beside it.
      {"AdamW", "", 2, true, adam},
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
  return update_rules()[static_cast<size_t>(enum_value(solver_type, names))];
}

}  // namespace crema
