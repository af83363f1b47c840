// Solver types (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam, AdamW), the warm-up
// and the cosine policy. The tiny net of solver_test_util.hpp (W = [0.5, -1], b = 0.25,
// x = [1, 2], y = 1) is trained by each solver and compared with
//   - first steps worked out by hand, and
//   - an independent double-precision simulation of the three scalars written from
//     the papers' forms of each rule (Kingma & Ba's Adam with ε̂, Zeiler's AdaDelta as
//     a ratio of two RMS, PyTorch's form of Nesterov), not from the solver's code.
// Every case uses lr_mult 1 / decay_mult 1 for W and lr_mult 2 / decay_mult 0 for b.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "solver_test_util.hpp"

using namespace crema;
using namespace crema::test;

namespace {

const char* kParams = "[{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]";

// The three parameters (W0, W1, b) trained in double precision.
struct Reference {
  std::string type;
  double lr = 0.1, momentum = 0, momentum2 = 0.999, rms_decay = 0.99, delta = 1e-8, weight_decay = 0.01;
  double lr_mult[3] = {1, 1, 2}, decay_mult[3] = {1, 1, 0};
  double w[3] = {0.5, -1, 0.25};
  double h1[3] = {}, h2[3] = {};  // V / H / m and D / v, as the snapshot keeps them
  int t = 0;

  void step() {
    // The solver keeps its hyper-parameters as float, as Caffe does (1 − 0.999f is
    // 1.3e-5 away from 0.001 relatively), so the reference uses the same values.
    auto f = [](double v) { return static_cast<double>(static_cast<float>(v)); };
    const double momentum = f(this->momentum), momentum2 = f(this->momentum2), rms_decay = f(this->rms_decay),
                 delta = f(this->delta);
    const double d = w[0] * 1 + w[1] * 2 + w[2] - 1;  // Wx + b − y
    const double grad[3] = {d * 1, d * 2, d};
    ++t;
    for (int k = 0; k < 3; ++k) {
      const double rate = lr * lr_mult[k], decay = weight_decay * decay_mult[k];
      const double g = grad[k] + (type == "AdamW" ? 0.0 : decay * w[k]);
      double s = 0;  // w −= s
      if (type == "SGD") {
        h1[k] = momentum * h1[k] + rate * g;
        s = h1[k];
      } else if (type == "Nesterov") {
        h1[k] = momentum * h1[k] + rate * g;
        s = rate * g + momentum * h1[k];  // = (1+μ)V' − μV
      } else if (type == "AdaGrad") {
        h1[k] += g * g;
        s = rate * g / (std::sqrt(h1[k]) + delta);
      } else if (type == "RMSProp") {
        h1[k] = rms_decay * h1[k] + (1 - rms_decay) * g * g;
        s = rate * g / (std::sqrt(h1[k]) + delta);
      } else if (type == "AdaDelta") {
        const double rho = momentum;
        h1[k] = rho * h1[k] + (1 - rho) * g * g;
        const double dx = std::sqrt(h2[k] + delta) / std::sqrt(h1[k] + delta) * g;  // RMS[Δx]_{t−1}/RMS[g]_t·g
        h2[k] = rho * h2[k] + (1 - rho) * dx * dx;
        s = rate * dx;
      } else {  // Adam, AdamW
        const double b1 = momentum, b2 = momentum2;
        h1[k] = b1 * h1[k] + (1 - b1) * g;
        h2[k] = b2 * h2[k] + (1 - b2) * g * g;
        const double m_hat = h1[k] / (1 - std::pow(b1, t)), v_hat = h2[k] / (1 - std::pow(b2, t));
        s = rate * m_hat / (std::sqrt(v_hat) + delta / std::sqrt(1 - std::pow(b2, t)));
        if (type == "AdamW") s += rate * decay * w[k];
      }
      w[k] -= s;
    }
  }
};

struct Case {
  Reference ref;
  std::string keys;  // the same settings as solver keys
};

std::vector<Case> cases() {
  std::vector<Case> c;
  auto add = [&](const std::string& type, const std::string& keys, auto tweak) {
    Reference r;
    r.type = type;
    tweak(r);
    c.push_back({r, "type: " + type + "\nbase_lr: " + std::to_string(r.lr) + "\nweight_decay: 0.01\n" + keys});
  };
  add("SGD", "momentum: 0.9\n", [](Reference& r) { r.momentum = 0.9; });
  add("Nesterov", "momentum: 0.9\n", [](Reference& r) { r.momentum = 0.9; });
  add("AdaGrad", "", [](Reference&) {});
  add("RMSProp", "rms_decay: 0.75\n", [](Reference& r) { r.rms_decay = 0.75; });
  add("RMSProp", "", [](Reference&) {});  // Caffe's default rms_decay 0.99
  add("AdaDelta", "momentum: 0.9\ndelta: 0.0001\n", [](Reference& r) {
    r.lr = 1;
    r.momentum = 0.9;
    r.delta = 1e-4;
  });
  add("Adam", "momentum: 0.9\n", [](Reference& r) { r.momentum = 0.9; });
  add("Adam", "momentum: 0.5\nmomentum2: 0.9\ndelta: 0.01\n", [](Reference& r) {
    r.momentum = 0.5;
    r.momentum2 = 0.9;
    r.delta = 0.01;
  });
  add("AdamW", "momentum: 0.9\n", [](Reference& r) { r.momentum = 0.9; });
  return c;
}

std::unique_ptr<Job> tiny_job(const std::string& keys) {
  auto j = make_job(tiny_net(kParams) + "max_iter: 100\n" + keys);
  init_tiny(*j);
  return j;
}

// Relative comparison: the histories range from 1e-6 (AdaDelta's D) to 20 (AdaGrad's H).
void check_relative(const Blob& b, std::vector<double> want, double eps = 1e-5) {
  REQUIRE(static_cast<int>(want.size()) == b.count());
  for (int i = 0; i < b.count(); ++i) {
    CAPTURE(i);
    CHECK(b.cpu_data()[i] == doctest::Approx(want[static_cast<size_t>(i)]).epsilon(eps).scale(0));
  }
}

void check_bitwise(const Blob& a, const Blob& b) {
  REQUIRE(a.count() == b.count());
  for (int i = 0; i < a.count(); ++i) {
    CAPTURE(i);
    CHECK(a.cpu_data()[i] == b.cpu_data()[i]);
  }
}

}  // namespace

TEST_CASE("solver types: the first step of each type, worked out by hand") {
  // With weight_decay 0.01 on W only: g = [-2.25 + 0.005, -4.5 - 0.01, -2.25] = [-2.245, -4.51, -2.25];
  // rate 0.1 for W and 0.2 for b.
  struct Want {
    std::string keys;
    std::vector<double> w, b;
  };
  const std::vector<Want> wants = {
      // Nesterov: V' = rate·g, step = (1 + 0.9)·rate·g.
      {"type: Nesterov\nmomentum: 0.9\n", {0.5 + 0.19 * 2.245, -1 + 0.19 * 4.51}, {0.25 + 0.38 * 2.25}},
      // AdaGrad: H = g², step = rate·g/(|g| + δ) = −rate (to 1e-8).
      {"type: AdaGrad\n", {0.6, -0.9}, {0.45}},
      // RMSProp, ρ = 0.75: H = 0.25 g², step = rate·g/(0.5|g|) = −2·rate.
      {"type: RMSProp\nrms_decay: 0.75\n", {0.7, -0.8}, {0.65}},
      // Adam: m = 0.1 g, v = 0.001 g², correction √0.001/0.1: step = rate·g/|g| = −rate.
      {"type: Adam\nmomentum: 0.9\n", {0.6, -0.9}, {0.45}},
      // AdamW: Adam's step on the undecayed g (still −rate) plus rate·0.01·w on W.
      {"type: AdamW\nmomentum: 0.9\n", {0.6 - 0.001 * 0.5, -0.9 + 0.001}, {0.45}},
      // AdaDelta, lr 1, μ = 0.9, δ = 1e-4: H = 0.1 g², step = rate·g·√(δ/(0.1 g² + δ)).
      {"type: AdaDelta\nbase_lr: 1\nmomentum: 0.9\ndelta: 0.0001\n",
       {0.5 + 2.245 * std::sqrt(1e-4 / (0.1 * 2.245 * 2.245 + 1e-4)),
        -1 + 4.51 * std::sqrt(1e-4 / (0.1 * 4.51 * 4.51 + 1e-4))},
       {0.25 + 2 * 2.25 * std::sqrt(1e-4 / (0.1 * 2.25 * 2.25 + 1e-4))}},
  };
  for (const Want& want : wants) {
    CAPTURE(want.keys);
    const std::string base = want.keys.find("base_lr") == std::string::npos ? "base_lr: 0.1\n" : "";
    auto j = tiny_job(want.keys + base + "weight_decay: 0.01\n");
    step(*j, 1);
    check_close(j->param("ip", 0), want.w, 1e-6);
    check_close(j->param("ip", 1), want.b, 1e-6);
  }
}

TEST_CASE("solver types: three steps of every type match the double-precision reference") {
  for (Case c : cases()) {
    CAPTURE(c.keys);
    auto j = tiny_job(c.keys);
    for (int s = 0; s < 3; ++s) {
      CAPTURE(s);
      step(*j, 1);
      c.ref.step();
      check_close(j->param("ip", 0), {c.ref.w[0], c.ref.w[1]});
      check_close(j->param("ip", 1), {c.ref.w[2]});
    }
    // The histories, in Caffe's snapshot layout: the K first ones in parameter order,
    // then (AdaDelta, Adam, AdamW) the K second ones.
    const SolverState st = j->solver->state();
    const bool two = c.ref.type == "AdaDelta" || c.ref.type == "Adam" || c.ref.type == "AdamW";
    REQUIRE(st.history.size() == (two ? 4u : 2u));
    CHECK(st.type == c.ref.type);
    CHECK(st.history[0].shape() == std::vector<int>{1, 2});
    CHECK(st.history[1].shape() == std::vector<int>{1});
    check_relative(st.history[0], {c.ref.h1[0], c.ref.h1[1]});
    check_relative(st.history[1], {c.ref.h1[2]});
    if (two) {
      CHECK(st.history[2].shape() == std::vector<int>{1, 2});
      CHECK(st.history[3].shape() == std::vector<int>{1});
      check_relative(st.history[2], {c.ref.h2[0], c.ref.h2[1]});
      check_relative(st.history[3], {c.ref.h2[2]});
    }
  }
}

TEST_CASE("solver types: AdamW decays the weights beside the step, Adam through the moments") {
  auto adam = tiny_job("type: Adam\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\n");
  auto adamw = tiny_job("type: AdamW\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\n");
  step(*adam, 1);
  step(*adamw, 1);
  // One step: both take Adam's first step −rate·sign(g); AdamW also moves W by −rate·wd·W.
  const Blob& wa = adam->param("ip", 0);
  const Blob& ww = adamw->param("ip", 0);
  CHECK(ww.cpu_data()[0] - wa.cpu_data()[0] == doctest::Approx(-0.1 * 0.01 * 0.5).epsilon(1e-3));
  CHECK(ww.cpu_data()[1] - wa.cpu_data()[1] == doctest::Approx(-0.1 * 0.01 * -1.0).epsilon(1e-3));
  // b has decay_mult 0: the same step in both, bit for bit.
  CHECK(adamw->param("ip", 1).cpu_data()[0] == adam->param("ip", 1).cpu_data()[0]);
  // The moments: Adam's m holds 0.1·(dW + wd·W), AdamW's 0.1·dW alone.
  check_close(adam->solver->state().history[0], {0.1 * -2.245, 0.1 * -4.51});
  check_close(adamw->solver->state().history[0], {0.1 * -2.25, 0.1 * -4.5});

  // lr_mult 0 freezes an AdamW parameter: no step and no decay.
  auto frozen = make_job(tiny_net("[{lr_mult: 0}, {}]") +
                         "type: AdamW\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.5\nmax_iter: 10\n");
  init_tiny(*frozen);
  step(*frozen, 3);
  check_close(frozen->param("ip", 0), {0.5, -1.0}, 0.0);

  // L1 with AdamW: the decoupled decay is rate·wd·sign(W).
  auto l1 = tiny_job("type: AdamW\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\nregularization_type: L1\n");
  step(*l1, 1);
  check_close(l1->param("ip", 0), {0.6 - 0.001, -0.9 + 0.001}, 1e-6);
}

TEST_CASE("solver types: cosine policy with and without min_lr") {
  int cs = 0;
  SolverSpec s;
  s.base_lr = 0.1f;
  s.lr_policy = "cosine";
  s.max_iter = 100;
  // 0.1·½(1 + cos(π·iter/100)).
  CHECK(learning_rate(s, 0, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(s, 25, &cs) == doctest::Approx(0.05 * (1 + std::sqrt(0.5))));
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(0.05));
  CHECK(learning_rate(s, 100, &cs) == doctest::Approx(0.0));
  // min_lr 0.01: 0.01 + 0.09·½(1 + cos(π·iter/100)); it stays at the floor past max_iter.
  s.min_lr = 0.01f;
  CHECK(learning_rate(s, 0, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(0.055));
  CHECK(learning_rate(s, 75, &cs) == doctest::Approx(0.01 + 0.045 * (1 - std::sqrt(0.5))));
  CHECK(learning_rate(s, 100, &cs) == doctest::Approx(0.01));
  CHECK(learning_rate(s, 130, &cs) == doctest::Approx(0.01));
}

TEST_CASE("solver types: linear warm-up ramps from warmup_start_lr into the policy") {
  QuietLog quiet;
  int cs = 0;
  SolverSpec s;
  s.base_lr = 0.1f;
  s.warmup_iter = 10;
  s.warmup_start_lr = 0.01f;
  // fixed: 0.01 + 0.09·iter/10, then 0.1; the last ramp step is one slope (0.009) below 0.1.
  const std::vector<double> fixed = {0.01, 0.019, 0.028, 0.037, 0.046, 0.055, 0.064, 0.073, 0.082, 0.091, 0.1, 0.1};
  for (int it = 0; it < 12; ++it) {
    CAPTURE(it);
    CHECK(learning_rate(s, it, &cs) == doctest::Approx(fixed[static_cast<size_t>(it)]));
  }

  // step (γ 0.5, stepsize 4) under an 8-iteration ramp from 0: policy·iter/8; the step
  // state advances during the ramp as without it.
  s.lr_policy = "step";
  s.gamma = 0.5f;
  s.stepsize = 4;
  s.warmup_iter = 8;
  s.warmup_start_lr = 0.f;
  CHECK(learning_rate(s, 0, &cs) == doctest::Approx(0.0));
  CHECK(learning_rate(s, 2, &cs) == doctest::Approx(0.1 * 2 / 8));
  CHECK(learning_rate(s, 6, &cs) == doctest::Approx(0.05 * 6 / 8));
  CHECK(cs == 1);
  CHECK(learning_rate(s, 8, &cs) == doctest::Approx(0.025));
  CHECK(cs == 2);

  // multistep (γ 0.1 at 2 and 3) under a 4-iteration ramp: 0, 0.1/4, 0.01·2/4, 0.001·3/4, 0.001.
  s.lr_policy = "multistep";
  s.gamma = 0.1f;
  s.stepvalue = {2, 3};
  s.warmup_iter = 4;
  cs = 0;
  const std::vector<double> multi = {0.0, 0.025, 0.005, 0.00075, 0.001};
  for (int it = 0; it < 5; ++it) {
    CAPTURE(it);
    CHECK(learning_rate(s, it, &cs) == doctest::Approx(multi[static_cast<size_t>(it)]));
  }
  CHECK(cs == 2);

  // cosine (max_iter 100) under a 10-iteration ramp from 0: at 5, ½·0.05(1 + cos(0.05π)).
  s.lr_policy = "cosine";
  s.max_iter = 100;
  s.warmup_iter = 10;
  CHECK(learning_rate(s, 5, &cs) == doctest::Approx(0.5 * 0.05 * (1 + std::cos(0.05 * std::numbers::pi))));
  CHECK(learning_rate(s, 10, &cs) == doctest::Approx(0.05 * (1 + std::cos(0.1 * std::numbers::pi))));

  // The solver uses it: a 2-iteration ramp from 0 leaves the first step at lr 0 and
  // takes the second at 0.05 (dW = [-2.25, -4.5], db = -2.25, plain SGD).
  auto j = make_job(tiny_net("") + "base_lr: 0.1\nwarmup_iter: 2\nwarmup_start_lr: 0\nmax_iter: 10\n");
  init_tiny(*j);
  step(*j, 1);
  check_close(j->param("ip", 0), {0.5, -1.0}, 0.0);
  step(*j, 1);
  check_close(j->param("ip", 0), {0.5 + 0.05 * 2.25, -1 + 0.05 * 4.5});
  check_close(j->param("ip", 1), {0.25 + 0.05 * 2.25});
}

TEST_CASE("solver types: 5 steps straight equal 2 steps, state, a new solver, restore, 3 steps, bit for bit") {
  // The rate depends on the restored iter and step state (a resume that lost
  // current_step would take γ¹ instead of γ² at iter 2), Adam's bias correction on iter.
  const std::string policy =
      "lr_policy: multistep\ngamma: 0.5\nstepvalue: [1, 2]\nwarmup_iter: 2\nwarmup_start_lr: 0.02\n";
  for (const Case& c : cases()) {
    CAPTURE(c.keys);
    auto straight = tiny_job(c.keys + policy);
    step(*straight, 5);

    auto first = tiny_job(c.keys + policy);
    step(*first, 2);
    const SolverState saved = first->solver->state();
    auto resumed = tiny_job(c.keys + policy);
    // The weights travel in the .caffemodel; here they are copied.
    for (int p = 0; p < 2; ++p) resumed->param("ip", p).copy_from(first->param("ip", p));
    resumed->solver->restore(saved);
    step(*resumed, 3);

    CHECK(resumed->solver->iter() == 5);
    for (int p = 0; p < 2; ++p) check_bitwise(resumed->param("ip", p), straight->param("ip", p));
    const SolverState a = straight->solver->state(), b = resumed->solver->state();
    CHECK(a.current_step == 2);
    CHECK(b.current_step == 2);
    REQUIRE(a.history.size() == b.history.size());
    for (size_t h = 0; h < a.history.size(); ++h) check_bitwise(a.history[h], b.history[h]);
    // And the weights did move in the resumed part.
    CHECK(resumed->param("ip", 0).cpu_data()[0] != first->param("ip", 0).cpu_data()[0]);
  }
}

TEST_CASE("solver types: a state with the wrong history count or type is refused") {
  auto sgd = tiny_job("type: SGD\nbase_lr: 0.1\nmomentum: 0.9\n");
  step(*sgd, 1);
  SolverState st = sgd->solver->state();
  REQUIRE(st.history.size() == 2);

  auto adam = tiny_job("type: Adam\nbase_lr: 0.1\nmomentum: 0.9\n");
  CHECK_THROWS_WITH_AS(adam->solver->restore(st),
                       doctest::Contains("written with type: SGD but this config uses type: Adam"), Error);
  // A Caffe-written state carries no type: the count tells (Adam keeps 2 per parameter).
  st.type.clear();
  CHECK_THROWS_WITH_AS(adam->solver->restore(st),
                       doctest::Contains("holds 2 history blobs but this Adam solver on this net keeps 4"), Error);
  // And the other way round: Adam's 4 blobs into an SGD solver.
  step(*adam, 1);
  SolverState two = adam->solver->state();
  two.type.clear();
  auto sgd2 = tiny_job("type: SGD\nbase_lr: 0.1\n");
  CHECK_THROWS_WITH_AS(sgd2->solver->restore(two), doctest::Contains("holds 4 history blobs"), Error);
  // A Caffe-written SGD state fits a Nesterov solver (same layout, as Caffe allows).
  auto nesterov = tiny_job("type: Nesterov\nbase_lr: 0.1\nmomentum: 0.9\n");
  CHECK_NOTHROW(nesterov->solver->restore(st));
  // A state of a net with another shape names the parameter.
  SolverState other = st;
  other.history[0].reshape({5});
  CHECK_THROWS_WITH_AS(nesterov->solver->restore(other),
                       doctest::Contains("history blob 0 in the snapshot, of layer 'ip' parameter 0, has shape 5 (5) "
                                         "but that parameter has shape"),
                       Error);
  // A damaged state's NaN momentum would turn every weight NaN at the first update.
  st.history[1].mutable_cpu_data()[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(nesterov->solver->restore(st),
                       doctest::Contains("history blob 1 of the snapshot holds NaN or infinite values"), Error);
}

TEST_CASE("solver types: parsing types, the legacy solver_type enum, defaults and bad values") {
  const std::string net = "net: {name: n, layer: [{name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}]}\n";
  auto parse_all = [&](const std::string& keys) {
    const Node root = io::parse_yaml(net + keys, "solver.yaml");
    return SolverSpec::parse(root);
  };
  // The keys under test start on line 4.
  auto parse = [&](const std::string& rest) { return parse_all("base_lr: 0.1\nmax_iter: 10\n" + rest); };
  for (const char* t : {"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam", "AdamW"})
    CHECK(parse(std::string("type: ") + t + "\n").type == t);
  const std::vector<std::pair<std::string, std::string>> legacy = {
      {"SGD", "SGD"}, {"NESTEROV", "Nesterov"}, {"ADAGRAD", "AdaGrad"},
      {"RMSPROP", "RMSProp"}, {"ADADELTA", "AdaDelta"}, {"ADAM", "Adam"}};
  for (const auto& [old, type] : legacy) CHECK(parse("solver_type: " + old + "\n").type == type);
  // Caffe's defaults.
  const SolverSpec d = parse("type: Adam\n");
  CHECK(d.delta == doctest::Approx(1e-8).scale(0));
  CHECK(d.momentum2 == doctest::Approx(0.999));
  CHECK(d.rms_decay == doctest::Approx(0.99));
  CHECK(d.warmup_iter == 0);
  const SolverSpec w = parse("lr_policy: cosine\nmin_lr: 0.001\nwarmup_iter: 5\nwarmup_start_lr: 0.01\n");
  CHECK(w.min_lr == doctest::Approx(0.001));
  CHECK(w.warmup_iter == 5);
  CHECK(w.warmup_start_lr == doctest::Approx(0.01));

  auto refused = [&](const std::string& rest, const std::string& message) {
    CAPTURE(rest);
    CHECK_THROWS_WITH_AS(parse(rest), doctest::Contains(message.c_str()), ConfigError);
  };
  refused("type: Adan\n", "unknown value 'Adan' (did you mean 'Adam'?)");
  refused("solver_type: AdamW\n", "expected one of: SGD, NESTEROV, ADAGRAD, RMSPROP, ADADELTA, ADAM");
  refused("type: Adam\nsolver_type: ADAM\n", "solver.yaml:5:14: solver_type: both type and the legacy solver_type");
  refused("type: AdaGrad\nmomentum: 0.9\n", "solver.yaml:5:11: momentum: momentum cannot be used with AdaGrad");
  refused("type: RMSProp\nmomentum: 0.9\n", "momentum cannot be used with RMSProp");
  refused("type: RMSProp\nrms_decay: 1\n", "rms_decay (the decay of the squared-gradient average) must lie in [0, 1)");
  refused("type: Adam\nmomentum: 1\n", "momentum (beta1) must lie in [0, 1) for Adam");
  refused("type: AdamW\nmomentum2: -0.5\n", "momentum2 (beta2) must lie in [0, 1) for AdamW");
  refused("type: AdaDelta\nmomentum: 1.5\n", "momentum (AdaDelta's decay) must lie in [0, 1)");
  refused("type: AdaGrad\ndelta: 0\n", "delta must be positive for AdaGrad");
  CHECK_THROWS_WITH_AS(parse_all("base_lr: 0.1\nlr_policy: cosine\nmax_iter: 0\n"),
                       doctest::Contains("lr_policy cosine needs max_iter > 0"), ConfigError);
  refused("min_lr: 0.01\n", "min_lr is the floor of lr_policy cosine");
  refused("lr_policy: cosine\nmin_lr: 0.5\n", "min_lr must lie between 0 and base_lr");
  refused("warmup_start_lr: 0.01\n", "warmup_start_lr needs warmup_iter");
  refused("warmup_iter: -1\n", "warmup_iter must not be negative");
  refused("warmup_iter: 3\nwarmup_start_lr: -1\n", "warmup_start_lr must not be negative");
  // Checks made after the whole map is read point at the key's own line, not at 1:1.
  refused("iter_size: 0\n", "solver.yaml:4:12: iter_size: iter_size must be at least 1");
  refused("snapshot: -1\n", "solver.yaml:4:11: snapshot: snapshot must not be negative");
  refused("lr_policy: step\nstepsize: 0\ngamma: 0.1\n", "solver.yaml:5:11: stepsize: stepsize must be positive");
  // A key the policy needs and nobody wrote: at lr_policy.
  refused("lr_policy: step\ngamma: 0.1\n", "solver.yaml:4:12: lr_policy: lr_policy step needs stepsize");
  // Caffe's 0 for a missing power or gamma would leave the rate fixed (or at base_lr/2).
  refused("lr_policy: inv\ngamma: 0.1\n", "solver.yaml:4:12: lr_policy: lr_policy inv needs power");
  refused("lr_policy: poly\n", "lr_policy poly needs power (a positive number)");
  refused("lr_policy: poly\npower: 0\n", "solver.yaml:5:8: power: power must be positive");
  refused("lr_policy: sigmoid\nstepsize: 50\n", "solver.yaml:4:12: lr_policy: lr_policy sigmoid needs gamma");
  refused("lr_policy: sigmoid\ngamma: -0.1\n", "lr_policy sigmoid needs stepsize");
  refused("lr_policy: sigmoid\ngamma: 0\nstepsize: 5\n", "solver.yaml:5:8: gamma: gamma must not be 0");
  CHECK_NOTHROW(parse("lr_policy: sigmoid\ngamma: -0.1\nstepsize: 50\n"));
  // SGD and Nesterov ignore delta, as Caffe does.
  CHECK_NOTHROW(parse("type: Nesterov\nmomentum: 0.9\ndelta: 0\n"));
}
