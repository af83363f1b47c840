// Solver: learning-rate policies and the SGD update, against values worked out by
// hand from the formulas in shared/reference/caffe-compat.md:
//   g /= iter_size; clip by global L2 norm; g += wd·decay_mult·w (L2) or ·sign(w) (L1);
//   V = μV + lr·lr_mult·g; w -= V.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "solver_test_util.hpp"

using namespace crema;
using namespace crema::test;

namespace {

SolverSpec policy(const std::string& name) {
  SolverSpec s;
  s.base_lr = 0.1f;
  s.lr_policy = name;
  return s;
}

}  // namespace

TEST_CASE("solver: learning_rate for fixed, step, exp, inv, poly and sigmoid") {
  int cs = 0;
  SolverSpec fixed = policy("fixed");
  CHECK(learning_rate(fixed, 0, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(fixed, 12345, &cs) == doctest::Approx(0.1));

  // step: 0.1 · 0.5^floor(iter / 10), current_step = floor(iter / 10).
  SolverSpec step_p = policy("step");
  step_p.gamma = 0.5f;
  step_p.stepsize = 10;
  CHECK(learning_rate(step_p, 0, &cs) == doctest::Approx(0.1));
  CHECK(cs == 0);
  CHECK(learning_rate(step_p, 9, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(step_p, 10, &cs) == doctest::Approx(0.05));
  CHECK(cs == 1);
  CHECK(learning_rate(step_p, 25, &cs) == doctest::Approx(0.025));
  CHECK(cs == 2);

  // exp: 0.1 · 0.9^3 = 0.0729.
  SolverSpec exp_p = policy("exp");
  exp_p.gamma = 0.9f;
  CHECK(learning_rate(exp_p, 0, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(exp_p, 3, &cs) == doctest::Approx(0.0729));

  // inv: 0.1 · (1 + 0.01·100)^-0.75 = 0.1 · 2^-0.75 = 0.05946036.
  SolverSpec inv = policy("inv");
  inv.gamma = 0.01f;
  inv.power = 0.75f;
  CHECK(learning_rate(inv, 0, &cs) == doctest::Approx(0.1));
  CHECK(learning_rate(inv, 100, &cs) == doctest::Approx(0.05946036));

  // poly: 0.1 · (1 - 25/100)^2 = 0.05625; 0 at max_iter.
  SolverSpec poly = policy("poly");
  poly.max_iter = 100;
  poly.power = 2.f;
  CHECK(learning_rate(poly, 25, &cs) == doctest::Approx(0.05625));
  CHECK(learning_rate(poly, 100, &cs) == doctest::Approx(0.0));
  poly.power = 1.f;
  CHECK(learning_rate(poly, 50, &cs) == doctest::Approx(0.05));

  // sigmoid: 0.1 / (1 + e^(-0.1 (iter - 50))): 0.05 at 50, 0.1/(1 + e^-1) at 60, 0.1/(1 + e) at 40.
  SolverSpec sig = policy("sigmoid");
  sig.gamma = 0.1f;
  sig.stepsize = 50;
  CHECK(learning_rate(sig, 50, &cs) == doctest::Approx(0.05));
  CHECK(learning_rate(sig, 60, &cs) == doctest::Approx(0.07310586));
  CHECK(learning_rate(sig, 40, &cs) == doctest::Approx(0.02689414));
}

TEST_CASE("solver: multistep advances at most one step value per call") {
  QuietLog quiet;
  SolverSpec s = policy("multistep");
  s.gamma = 0.1f;
  s.stepvalue = {2, 3, 10};
  int cs = 0;
  const std::vector<double> want = {0.1, 0.1, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 1e-4, 1e-4};
  for (int it = 0; it < 12; ++it) {
    CAPTURE(it);
    CHECK(learning_rate(s, it, &cs) == doctest::Approx(want[static_cast<size_t>(it)]));
  }
  CHECK(cs == 3);

  // Resuming far past every step value: one step per call, then it stays.
  cs = 0;
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(0.01));
  CHECK(cs == 1);
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(0.001));
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(1e-4));
  CHECK(learning_rate(s, 50, &cs) == doctest::Approx(1e-4));
  CHECK(cs == 3);
}

TEST_CASE("solver: SGD with momentum, L2 decay, per-parameter lr_mult and decay_mult (two steps by hand)") {
  auto j = make_job(tiny_net("[{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]") +
                    "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\nmax_iter: 10\ndisplay: 1\n");
  init_tiny(*j);
  step(*j, 1);
  // W: g = [-2.25, -4.5] + 0.01·[0.5, -1] = [-2.245, -4.51]; V = 0.1 g; W = [0.7245, -0.549].
  // b: no decay, rate 0.2: V = -0.45, b = 0.7.
  check_close(j->param("ip", 0), {0.7245, -0.549});
  check_close(j->param("ip", 1), {0.7});
  REQUIRE(j->solver->displayed_losses().size() == 1);
  CHECK(j->solver->displayed_losses()[0].second == doctest::Approx(2.53125));

  step(*j, 1);
  // out = 0.7245 - 1.098 + 0.7 = 0.3265, d = -0.6735, dW = [-0.6735, -1.347], db = -0.6735.
  // W: g = dW + 0.01 W = [-0.666255, -1.35249]; V = 0.9·[-0.2245, -0.451] + 0.1 g = [-0.2686755, -0.541149].
  // b: V = 0.9·(-0.45) + 0.2·(-0.6735) = -0.5397.
  check_close(j->param("ip", 0), {0.9931755, -0.007851});
  check_close(j->param("ip", 1), {1.2397});
  REQUIRE(j->solver->displayed_losses().size() == 2);
  CHECK(j->solver->displayed_losses()[1].second == doctest::Approx(0.226801125));
  CHECK(j->solver->iter() == 2);
  const SolverState st = j->solver->state();
  REQUIRE(st.history.size() == 2);
  check_close(st.history[0], {-0.2686755, -0.541149});
  check_close(st.history[1], {-0.5397});
}

TEST_CASE("solver: L1 weight decay adds wd·decay_mult·sign(w)") {
  auto j = make_job(tiny_net("[{}, {decay_mult: 0.5}]") +
                    "base_lr: 0.1\nweight_decay: 0.1\nregularization_type: L1\nmax_iter: 10\n");
  init_tiny(*j);
  step(*j, 1);
  // W: g = [-2.25 + 0.1, -4.5 - 0.1] = [-2.15, -4.6]; W = [0.715, -0.54].
  // b: g = -2.25 + 0.05 = -2.2; b = 0.25 + 0.22 = 0.47.
  check_close(j->param("ip", 0), {0.715, -0.54});
  check_close(j->param("ip", 1), {0.47});
}

TEST_CASE(
    "solver: clip_gradients scales the summed gradients by their global norm before averaging and regularisation") {
  // |g| = sqrt(2.25² + 4.5² + 2.25²) = 2.25·sqrt(6); clipped to 1: g = [-1, -2, -1]/sqrt(6).
  auto j = make_job(tiny_net("") + "base_lr: 1\nweight_decay: 0.1\nclip_gradients: 1\nmax_iter: 10\n");
  init_tiny(*j);
  step(*j, 1);
  const double r6 = 1.0 / std::sqrt(6.0);
  // W: g = [-r6 + 0.05, -2 r6 - 0.1]; b: g = -r6 + 0.025.
  check_close(j->param("ip", 0), {0.5 + r6 - 0.05, -1.0 + 2 * r6 + 0.1});
  check_close(j->param("ip", 1), {0.25 + r6 - 0.025});

  // iter_size 2 on the same data: Caffe clips the sum of the passes (norm 4.5·sqrt(6)) to 1,
  // then halves it, so the step is half the one above (averaging first would give the same).
  auto m = make_job(tiny_net("") + "base_lr: 1\nweight_decay: 0.1\nclip_gradients: 1\niter_size: 2\nmax_iter: 10\n");
  init_tiny(*m);
  step(*m, 1);
  check_close(m->param("ip", 0), {0.5 + r6 / 2 - 0.05, -1.0 + r6 + 0.1});
  check_close(m->param("ip", 1), {0.25 + r6 / 2 - 0.025});

  // Below the threshold nothing is scaled: plain SGD with lr 0.1.
  auto k = make_job(tiny_net("") + "base_lr: 0.1\nclip_gradients: 10\nmax_iter: 10\n");
  init_tiny(*k);
  step(*k, 1);
  check_close(k->param("ip", 0), {0.725, -0.55});
  check_close(k->param("ip", 1), {0.475});
}

TEST_CASE("solver: the policy's rate is used for each step (step policy, stepsize 1)") {
  auto j = make_job(tiny_net("") + "base_lr: 0.1\nlr_policy: step\ngamma: 0.5\nstepsize: 1\nmax_iter: 10\n");
  init_tiny(*j);
  step(*j, 1);
  check_close(j->param("ip", 0), {0.725, -0.55});
  check_close(j->param("ip", 1), {0.475});
  // out = 0.725 - 1.1 + 0.475 = 0.1, d = -0.9; rate at iter 1 is 0.05.
  step(*j, 1);
  check_close(j->param("ip", 0), {0.77, -0.46});
  check_close(j->param("ip", 1), {0.52});
  CHECK(j->solver->state().current_step == 1);
}

TEST_CASE("solver: lr_mult 0 freezes a parameter even with momentum and weight decay") {
  auto j = make_job(tiny_net("[{lr_mult: 0}, {}]") + "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.1\nmax_iter: 10\n");
  init_tiny(*j);
  const unsigned long long writes = j->param("ip", 0).data_memory()->writes();
  step(*j, 3);
  check_close(j->param("ip", 0), {0.5, -1.0}, 0.0);
  CHECK(j->param("ip", 1).cpu_data()[0] != doctest::Approx(0.25));
  // The update leaves it alone: its memory is never written (what is made from its values,
  // a bf16 InnerProduct's rounded copy, is not made again), and its momentum stays 0.
  CHECK(j->param("ip", 0).data_memory()->writes() == writes);
  check_close(j->solver->state().history[0], {0, 0}, 0.0);

  // A momentum a resume brings (the snapshot of a run that trained it) still moves it, as
  // in Caffe: V = 0.9·V, w -= V.
  SolverState s = j->solver->state();
  set(s.history[0], {0.2f, -0.4f});
  auto k = make_job(tiny_net("[{lr_mult: 0}, {}]") + "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.1\nmax_iter: 10\n");
  init_tiny(*k);
  k->solver->restore(s);
  {
    test::CaptureLog log;
    step(*k, 2);
    CHECK_MESSAGE(log.text().find("layer 'ip' parameter 0 has lr_mult 0, but the resumed solver state holds a momentum "
                                  "for it, which still moves it as in Caffe") != std::string::npos,
                  log.text());
  }
  check_close(k->param("ip", 0), {0.5 - 0.18 - 0.162, -1.0 + 0.36 + 0.324}, 1e-6);
  // Without momentum an SGD history moves nothing either (V = 0·V + 0): frozen, not warned.
  auto plain = make_job(tiny_net("[{lr_mult: 0}, {}]") + "base_lr: 0.1\nmax_iter: 10\n");
  init_tiny(*plain);
  plain->solver->restore(s);  // V of W = (0.2, -0.4)
  {
    test::CaptureLog log;
    step(*plain, 2);
    CHECK_MESSAGE(log.text().find("holds a momentum") == std::string::npos, log.text());
  }
  check_close(plain->param("ip", 0), {0.5, -1.0}, 0.0);
  // An adaptive rule's histories move nothing at rate 0, whatever they hold: such a parameter
  // stays frozen, untouched, even with a restored Adam state.
  auto adam = make_job(tiny_net("[{lr_mult: 0}, {}]") +
                       "type: Adam\nbase_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.1\nmax_iter: 10\n");
  init_tiny(*adam);
  SolverState moments = adam->solver->state();
  set(moments.history[0], {0.2f, -0.4f});  // m of W
  set(moments.history[2], {0.1f, 0.3f});   // v of W
  adam->solver->restore(moments);
  const unsigned long long adam_writes = adam->param("ip", 0).data_memory()->writes();
  step(*adam, 2);
  check_close(adam->param("ip", 0), {0.5, -1.0}, 0.0);
  CHECK(adam->param("ip", 0).data_memory()->writes() == adam_writes);
  // The same restored into the solver that had found the parameter frozen at its first update.
  init_tiny(*j);
  j->solver->restore(s);
  step(*j, 2);
  check_close(j->param("ip", 0), {0.5 - 0.18 - 0.162, -1.0 + 0.36 + 0.324}, 1e-6);
}

TEST_CASE("solver: iter_size 2 gives the same updates as iter_size 1 on the same data") {
  auto net = [](int batch) {
    return "net:\n"
           "  name: n\n"
           "  layer:\n"
           "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [" +
           std::to_string(batch) + ", 3]}, {dim: [" + std::to_string(batch) +
           ", 2]}]}}\n"
           "  - {name: ip, type: InnerProduct, bottom: x, top: out, inner_product_param: {num_output: 2}}\n"
           "  - {name: loss, type: EuclideanLoss, bottom: [out, y], top: loss}\n";
  };
  const std::string solver = "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.01\nmax_iter: 10\ndisplay: 1\n";
  auto a = make_job(net(2) + solver);
  auto b = make_job(net(2) + solver + "iter_size: 2\n");
  auto c = make_job(net(4) + solver);  // the batch of two, twice
  const std::vector<float> x = {1, -2, 0.5f, 3, 1, -1}, y = {0.5f, -1, 2, 0};
  const std::vector<float> w = {0.1f, 0.2f, -0.3f, 0.4f, -0.5f, 0.6f}, bias = {0.05f, -0.05f};
  for (Job* j : {a.get(), b.get(), c.get()}) {
    if (j == c.get()) {
      std::vector<float> x2 = x, y2 = y;
      x2.insert(x2.end(), x.begin(), x.end());
      y2.insert(y2.end(), y.begin(), y.end());
      set(j->blob("x"), x2);
      set(j->blob("y"), y2);
    } else {
      set(j->blob("x"), x);
      set(j->blob("y"), y);
    }
    set(j->param("ip", 0), w);
    set(j->param("ip", 1), bias);
    step(*j, 3);
  }
  for (Job* j : {b.get(), c.get()}) {
    for (int p = 0; p < 2; ++p)
      for (int i = 0; i < j->param("ip", p).count(); ++i)
        CHECK(j->param("ip", p).cpu_data()[i] == doctest::Approx(a->param("ip", p).cpu_data()[i]).epsilon(1e-5));
    REQUIRE(j->solver->displayed_losses().size() == 3);
    for (size_t k = 0; k < 3; ++k)
      CHECK(j->solver->displayed_losses()[k].second ==
            doctest::Approx(a->solver->displayed_losses()[k].second).epsilon(1e-5));
  }
  // And the weights did move.
  CHECK(std::fabs(a->param("ip", 0).cpu_data()[0] - 0.1f) > 1e-3);

  // Caffe clips the gradients summed over the iter_size passes, then averages them: with the
  // same data in both passes the sum is twice one pass's, so iter_size 2 with clip_gradients
  // 0.2 gives the update of iter_size 1 with 0.1 (and 0.1 would give half of it).
  auto d = make_job(net(2) + solver + "clip_gradients: 0.1\n");
  auto e = make_job(net(2) + solver + "clip_gradients: 0.2\niter_size: 2\n");
  for (Job* j : {d.get(), e.get()}) {
    set(j->blob("x"), x);
    set(j->blob("y"), y);
    set(j->param("ip", 0), w);
    set(j->param("ip", 1), bias);
    step(*j, 2);
  }
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < d->param("ip", p).count(); ++i)
      CHECK(e->param("ip", p).cpu_data()[i] == doctest::Approx(d->param("ip", p).cpu_data()[i]).epsilon(1e-5));
  // The clip was active: |g| starts above 2 (dW row 0 alone is [-2.175, 0.325, 0.35]), so two
  // clipped steps move the parameters by at most about lr·0.1·(1 + 1.9) plus a little decay.
  auto moved = [&](Job& j) {
    double sq = 0;
    for (size_t i = 0; i < w.size(); ++i) sq += std::pow(j.param("ip", 0).cpu_data()[i] - w[i], 2);
    for (size_t i = 0; i < bias.size(); ++i) sq += std::pow(j.param("ip", 1).cpu_data()[i] - bias[i], 2);
    return std::sqrt(sq);
  };
  CHECK(moved(*d) < 0.02);
  CHECK(moved(*d) > 0.01);
  CHECK(moved(*a) > 0.05);
}

TEST_CASE("solver: the displayed loss is the running mean over average_loss iterations") {
  // Losses of the two-step hand example: 2.53125, 0.226801125, then with W = [0.9931755, -0.007851],
  // b = 1.2397: out = 2.2171735, d = 1.2171735, loss = d²/2 = 0.74075566.
  auto j = make_job(tiny_net("[{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]") +
                    "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\nmax_iter: 10\ndisplay: 1\naverage_loss: 2\n");
  init_tiny(*j);
  step(*j, 3);
  const auto& shown = j->solver->displayed_losses();
  REQUIRE(shown.size() == 3);
  CHECK(shown[0].first == 0);
  CHECK(shown[2].first == 2);
  CHECK(shown[0].second == doctest::Approx(2.53125));
  CHECK(shown[1].second == doctest::Approx((2.53125 + 0.226801125) / 2));
  CHECK(shown[2].second == doctest::Approx((0.226801125 + 0.74075566) / 2).epsilon(1e-4));
}

TEST_CASE(
    "solver: a resume continues the loss average, or starts a new one when the saved window cannot be this run's") {
  // The hand example's losses again: 2.53125, 0.226801125, 0.74075566 (average_loss 2).
  const std::string keys =
      "base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.01\nmax_iter: 10\ndisplay: 1\naverage_loss: 2\n";
  auto first = make_job(tiny_net("[{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]") + keys);
  init_tiny(*first);
  step(*first, 2);
  const SolverState saved = first->solver->state();
  const auto resume = [&](const SolverState& s) {
    auto j = make_job(tiny_net("[{lr_mult: 1, decay_mult: 1}, {lr_mult: 2, decay_mult: 0}]") + keys);
    init_tiny(*j);  // the data; the weights are the first run's
    for (int p = 0; p < 2; ++p) j->param("ip", p).copy_from(first->param("ip", p));
    j->solver->restore(s);
    step(*j, 1);
    REQUIRE(j->solver->displayed_losses().size() == 1);
    return j->solver->displayed_losses()[0].second;
  };
  CHECK(resume(saved) == doctest::Approx((0.226801125 + 0.74075566) / 2).epsilon(1e-4));
  // An edited file (or a snapshot of a run with a larger average_loss): a million saved losses
  // were once accepted and indexed modulo the window, a NaN kept the printed loss NaN for good.
  SolverState many = saved;
  many.recent_losses.assign(1000000, 5.f);
  CHECK(resume(many) == doctest::Approx(0.74075566).epsilon(1e-4));
  SolverState nan = saved;
  nan.recent_losses[0] = std::nanf("");
  CHECK(resume(nan) == doctest::Approx(0.74075566).epsilon(1e-4));
  SolverState ahead = saved;
  ahead.loss_origin = 7;  // after the snapshot's own iteration
  CHECK(resume(ahead) == doctest::Approx(0.74075566).epsilon(1e-4));
}

TEST_CASE("solver: the same random_seed gives bit-identical losses (random data and dropout)") {
  auto job = [](int seed) {
    return make_job(
        "net:\n"
        "  name: n\n"
        "  layer:\n"
        "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [4, 5]}, {dim: [4, 3]}],"
        " data_filler: {type: gaussian, std: 1}}}\n"
        "  - {name: ip, type: InnerProduct, bottom: x, top: h, inner_product_param: {num_output: 3,"
        " weight_filler: {type: xavier}, bias_filler: {type: gaussian, std: 0.1}}}\n"
        "  - {name: drop, type: Dropout, bottom: h, top: h, dropout_param: {dropout_ratio: 0.3}}\n"
        "  - {name: loss, type: EuclideanLoss, bottom: [h, y], top: loss}\n"
        "base_lr: 0.05\nmomentum: 0.9\nmax_iter: 100\ndisplay: 1\nrandom_seed: " +
        std::to_string(seed) + "\n");
  };
  auto a = job(77), b = job(77), c = job(78);
  step(*a, 6);
  step(*b, 6);
  step(*c, 6);
  const auto& la = a->solver->displayed_losses();
  const auto& lb = b->solver->displayed_losses();
  REQUIRE(la.size() == 6);
  REQUIRE(lb.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK(la[i].second == lb[i].second);  // exact
  }
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < a->param("ip", p).count(); ++i)
      CHECK(a->param("ip", p).cpu_data()[i] == b->param("ip", p).cpu_data()[i]);
  // The data really is random per iteration, and another seed gives other losses.
  CHECK(la[0].second != la[1].second);
  CHECK(c->solver->displayed_losses()[0].second != la[0].second);
}

TEST_CASE("solver: SolverSpec::parse rejects bad values") {
  const std::string net = "net: {name: n, layer: [{name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}]}\n";
  auto parse = [&](const std::string& rest) {
    const Node root = io::parse_yaml(net + rest, "solver.yaml");
    return SolverSpec::parse(root);
  };
  CHECK_NOTHROW(parse("base_lr: 0.1\nmax_iter: 10\n"));
  // Unknown policy: lists the choices; a near miss gets a suggestion, at the value (line 3, column 12).
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nlr_policy: bogus\nmax_iter: 10\n"),
                       doctest::Contains("expected one of: fixed, step, exp, inv, multistep, poly, sigmoid"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: mutlistep\n"),
                       doctest::Contains("solver.yaml:4:12: lr_policy: unknown value 'mutlistep' (did you mean 'multistep'?)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: step\ngamma: 0.1\n"),
                       doctest::Contains("stepsize"), ConfigError);
  // At lr_policy, naming step's key if that is what was given (it was at 1:1).
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: multistep\ngamma: 0.1\nstepsize: 3\n"),
                       doctest::Contains("solver.yaml:4:12: lr_policy: lr_policy multistep needs stepvalue (the "
                                         "iterations where the rate is multiplied by gamma); stepsize is for "
                                         "lr_policy step"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: multistep\ngamma: 0.1\nstepvalue: [5, 3]\n"),
                       doctest::Contains("increasing"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: multistep\ngamma: 0.1\nstepvalue: [-3, 2]\n"),
                       doctest::Contains("solver.yaml:6:13: stepvalue[0]: stepvalue -3 is negative"), ConfigError);
  // Seeds are 32-bit: a larger one ran as another while the log named it.
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nrandom_seed: 4294967296\n"),
                       doctest::Contains("random_seed must be at most 4294967295"), ConfigError);
  CHECK_NOTHROW(parse("base_lr: 0.1\nmax_iter: 10\nrandom_seed: 4294967295\n"));
  // Other frameworks' names for the schedule and its keys.
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: multistep\nmilestones: [3]\n"),
                       doctest::Contains("unknown key 'milestones' (did you mean 'stepvalue'?"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: constant\n"),
                       doctest::Contains("unknown value 'constant' (did you mean 'fixed'?"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\ntype: Adam\nbetas: [0.9, 0.99]\n"),
                       doctest::Contains("momentum takes the first beta and momentum2 the second"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\ntest_interval: 5\n"),
                       doctest::Contains("solver.yaml:4:16: test_interval: test_interval is set, so test_iter"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\niter_size: 0\n"), doctest::Contains("iter_size"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nregularization_type: L3\n"),
                       doctest::Contains("regularization_type"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nmomentun: 0.9\n"), doctest::Contains("did you mean 'momentum'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: fast\nmax_iter: 10\n"), doctest::Contains("expected a number, got 'fast'"),
                       ConfigError);
  // A valid step policy parses with its values.
  const SolverSpec s = parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: step\ngamma: 0.1\nstepsize: 4\niter_size: 3\n");
  CHECK(s.lr_policy == "step");
  CHECK(s.stepsize == 4);
  CHECK(s.iter_size == 3);
  CHECK(s.gamma == doctest::Approx(0.1f));
  CHECK(s.warnings.empty());
  // Keys the policy or type does not read, and a step policy working against its name, are said (taken silently).
  const SolverSpec unused = parse(
      "base_lr: 0.1\nmax_iter: 10\nlr_policy: step\ngamma: 10\nstepsize: 20\nstepvalue: [5]\npower: 1\n"
      "momentum2: 0.9\n");
  const std::vector<std::string> want = {
      "solver.yaml:8:8: power is not used by lr_policy step, and is ignored (remove it, or give the policy that "
      "reads it)",
      "solver.yaml:7:12: stepvalue is not used by lr_policy step, and is ignored (remove it, or give the policy that "
      "reads it)",
      "solver.yaml:9:12: momentum2 is not used by type SGD, and is ignored (remove it, or give the type that reads it)",
      "gamma 10 is above 1: lr_policy step multiplies the rate by it, so the rate grows",
      "stepsize 20 is not below max_iter 10: the rate never drops"};
  CHECK(unused.warnings == want);
  // Caffe's default snapshot_format, spelled out in old solver files, runs as HDF5 (it was refused).
  for (const char* format : {"BINARYPROTO", "1"})
    CHECK(parse("base_lr: 0.1\nmax_iter: 10\nsnapshot_format: " + std::string(format) + "\n").warnings ==
          std::vector<std::string>{"solver.yaml:4:18: snapshot_format BINARYPROTO: crema writes its snapshots in HDF5 "
                                   "(.caffemodel.h5 and .solverstate.h5), which Caffe reads as well; write "
                                   "snapshot_format: HDF5 to say so"});
  CHECK(parse("base_lr: 0.1\nmax_iter: 10\nsnapshot_format: HDF5\n").warnings.empty());
  CHECK(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: fixed\ngamma: 0.1\n").warnings.size() == 1);
  CHECK(parse("base_lr: 0.1\nmax_iter: 10\nlr_policy: inv\ngamma: 0.1\npower: 0.75\ntype: Adam\nmomentum2: 0.99\n")
            .warnings.empty());
}

TEST_CASE("solver: SolverSpec::parse refuses rates, decays and momenta that cannot train") {
  const std::string net = "net: {name: n, layer: [{name: d, type: Input, top: d, input_param: {shape: {dim: [1]}}}]}\n";
  auto parse = [&](const std::string& rest) {
    const Node root = io::parse_yaml(net + rest, "solver.yaml");
    return SolverSpec::parse(root);
  };
  // Each points at the value, on line 2 (the net is line 1).
  CHECK_THROWS_WITH_AS(parse("max_iter: 10\nbase_lr: .inf\n"),
                       doctest::Contains("solver.yaml:3:10: base_lr: base_lr must be a finite number >= 0"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("max_iter: 10\nbase_lr: -0.1\n"), doctest::Contains("solver.yaml:3:10: base_lr"),
                       ConfigError);
  CHECK_NOTHROW(parse("max_iter: 10\nbase_lr: 0\n"));  // evaluating or refreshing BatchNorm statistics
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nweight_decay: -0.0005\n"),
                       doctest::Contains("solver.yaml:4:15: weight_decay: weight_decay must be a finite number >= 0"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nmomentum: 1.5\n"),
                       doctest::Contains("solver.yaml:4:11: momentum: momentum must lie in [0, 1) for SGD"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\ntype: Nesterov\nmomentum: 1\n"),
                       doctest::Contains("for Nesterov"), ConfigError);
  CHECK_NOTHROW(parse("base_lr: 0.1\nmax_iter: 10\nmomentum: 0.99\n"));
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\ndisplay: -1\n"),
                       doctest::Contains("display must not be negative"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nclip_gradients: .inf\n"),
                       doctest::Contains("solver.yaml:4:17: clip_gradients: an infinite value is not usable here"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("base_lr: 0.1\nmax_iter: 10\nsnapshot_prefix: ''\n"),
                       doctest::Contains("solver.yaml:4:18: snapshot_prefix: snapshot_prefix is empty"), ConfigError);
}

TEST_CASE("solver: a parameter's negative or infinite decay_mult is refused at its layer") {
  CHECK_THROWS_WITH_AS(make_job(tiny_net("[{decay_mult: -1}, {}]") + "base_lr: 0.1\nmax_iter: 10\n"),
                       doctest::Contains("decay_mult must be a finite number >= 0"), ConfigError);
  CHECK_THROWS_WITH_AS(make_job(tiny_net("[{lr_mult: .inf}, {}]") + "base_lr: 0.1\nmax_iter: 10\n"),
                       doctest::Contains("lr_mult: an infinite value is not usable here"), ConfigError);
}

TEST_CASE("solver: a TRAIN net without a loss is refused (training it would change nothing)") {
  const std::string yaml =
      "base_lr: 0.1\nmax_iter: 10\n"
      "net:\n  name: noloss\n  layer:\n"
      "  - {name: data, type: DummyData, top: x, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
      "  - name: ip\n    type: InnerProduct\n    bottom: x\n    top: out\n    inner_product_param: {num_output: 2}\n";
  CHECK_THROWS_WITH_AS(make_job(yaml), doctest::Contains("solver.yaml:3:1: net: the TRAIN net 'noloss' has no loss"),
                       ConfigError);
  // Loss layers that all weigh 0 are named as such (it said "has no loss" of a net with two losses).
  CHECK_THROWS_WITH_AS(make_job("base_lr: 0.1\nmax_iter: 10\n"
                                "net:\n  name: zero\n  layer:\n"
                                "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [2, "
                                "3]}, {dim: [2]}]}}\n"
                                "  - {name: ip, type: InnerProduct, bottom: x, top: out, inner_product_param: "
                                "{num_output: 2}}\n"
                                "  - {name: loss, type: SoftmaxWithLoss, bottom: [out, y], top: l, loss_weight: 0}\n"),
                       doctest::Contains("solver.yaml:8:5: net: every loss of the TRAIN net 'zero' ('loss') has "
                                         "loss_weight 0"),
                       ConfigError);
  // A loss the TRAIN state's rules leave out (a stage meant for deploying) is named, with the state.
  CHECK_THROWS_WITH_AS(make_job("base_lr: 0.1\nmax_iter: 10\ntrain_state: {stage: [deploy]}\n"
                                "net:\n  name: staged\n  layer:\n"
                                "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [2, "
                                "3]}, {dim: [2]}]}}\n"
                                "  - {name: ip, type: InnerProduct, bottom: x, top: out, inner_product_param: "
                                "{num_output: 2}}\n"
                                "  - {name: loss, type: SoftmaxWithLoss, bottom: [out, y], top: l, exclude: {stage: "
                                "deploy}}\n"
                                "  - {name: silence, type: Silence, bottom: y, include: {stage: deploy}}\n"),
                       doctest::Contains("net: the TRAIN net 'staged' has no loss: its include/exclude rules leave out "
                                         "'loss' in the TRAIN state (level 0, stage deploy), so training would change "
                                         "no weight; check train_state and --stage/--level"),
                       ConfigError);
  // The same net with a loss weight on its top trains.
  CHECK_NOTHROW(make_job(yaml + "    loss_weight: 1\n"));
  // A net that learns nothing needs no loss: BatchNorm refreshing its statistics (its lr_mult is 0).
  CHECK_NOTHROW(
      make_job("base_lr: 0\nmax_iter: 10\n"
               "net:\n  name: stats\n  layer:\n"
               "  - {name: data, type: DummyData, top: x, dummy_data_param: {shape: {dim: [2, 3]}}}\n"
               "  - {name: bn, type: BatchNorm, bottom: x, top: y}\n"));
  // Nor a net without any parameters: it would train nothing at all.
  CHECK_THROWS_WITH_AS(
      make_job("base_lr: 0.1\nmax_iter: 10\nnet:\n  name: reader\n  layer:\n"
               "  - {name: data, type: DummyData, top: x, dummy_data_param: {shape: {dim: [2, 3]}}}\n"),
      doctest::Contains("the TRAIN net 'reader' has no loss"), ConfigError);
  CHECK_THROWS_WITH_AS(make_job("base_lr: 0.1\nmax_iter: 10\nnet:\n  name: empty\n  layer: []\n"),
                       doctest::Contains("the TRAIN net 'empty' has no loss"), ConfigError);
}

TEST_CASE("solver: a stop that comes while a snapshot is written stops right after it") {
  // A large net's snapshot takes seconds; a scheduler's SIGTERM often lands in it. One more
  // iteration and a second snapshot would eat the grace period before the kill.
  const std::string yaml =
      "base_lr: 0.1\nmax_iter: 20\nsnapshot: 5\nsnapshot_prefix: unused\n"
      "net:\n  name: tiny\n  layer:\n"
      "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [2, 3]}, {dim: [2, 1]}], "
      "data_filler: {type: gaussian}}}\n"
      "  - {name: ip, type: InnerProduct, bottom: x, top: out, inner_product_param: {num_output: 1}}\n"
      "  - {name: loss, type: EuclideanLoss, bottom: [out, y], top: loss}\n";
  auto j = make_job(yaml);
  std::vector<int> snapshots;
  bool stop = false;
  j->solver->on_snapshot = [&](Solver& s) {
    snapshots.push_back(s.iter());
    stop = true;  // the signal arrives while this snapshot is written
  };
  j->solver->poll_action = [&] { return stop ? Solver::Action::Stop : Solver::Action::None; };
  QuietLog quiet;
  j->solver->solve();
  CHECK(j->solver->stopped_early());
  CHECK(j->solver->iter() == 5);
  CHECK(snapshots == std::vector<int>{5});

  // One asked for during setup, seen at the first poll: the snapshot is of the starting
  // weights, nothing trained.
  auto early = make_job(yaml);
  snapshots.clear();
  early->solver->on_snapshot = [&](Solver& s) { snapshots.push_back(s.iter()); };
  early->solver->poll_action = [] { return Solver::Action::Stop; };
  early->solver->solve();
  CHECK(early->solver->stopped_early());
  CHECK(early->solver->iter() == 0);
  CHECK(snapshots == std::vector<int>{0});
}

TEST_CASE("solver: a stop between the passes of an iteration (iter_size) undoes it, and the resume is bit for bit") {
  // An iteration of many passes can outlast a scheduler's grace period; it used to be
  // finished before the stop was seen.
  check_cut_short(stop_between_passes(), make_job, 0);
}

TEST_CASE("solver: an error in a later pass or in the test pass snapshots the iteration as it began, resumed exactly") {
  // Batches of 16 in order: sample 131 is in batch 8, iteration 2's third pass, after two
  // passes moved the reader, BatchNorm's statistics, the RNN's state and the random stream.
  CutShort in_pass = bad_label("train", 131, 2);
  in_pass.shuffle = false;
  check_cut_short(in_pass, make_job, 0);
  // The test pass at iteration 3 reads test samples 0 to 31.
  check_cut_short(bad_label("test", 5, 3), make_job, 0);
}

TEST_CASE("solver: a gradient that stops being finite while the loss stays finite stops training at that update") {
  SUBCASE("a gradient that overflows where the output does not") {
    auto j = make_job(sqrt_at_zero_net() + "base_lr: 0.01\nmax_iter: 10\nsnapshot: 1\nsnapshot_prefix: unused\n");
    int snapshots = 0;
    j->solver->on_snapshot = [&](Solver&) { ++snapshots; };
    CHECK_THROWS_WITH_AS(step(*j, 3),
                         doctest::Contains("training diverged at iteration 0: after the update, layer 'ip' parameter "
                                           "0 holds NaN or infinite values although the loss was finite"),
                         Error);
    CHECK(j->solver->iter() == 0);
    CHECK(snapshots == 0);  // the broken weights were not snapshotted
  }
  // Caffe's ReLU keeps NaN and the loss shows it; oneDNN's turns it into 0, so the loss
  // stays finite while the first layer's weight gradient is NaN.
  const std::string net =
      "net:\n"
      "  name: hidden\n"
      "  layer:\n"
      "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [1, 2]}, {dim: [1, 1]}]}}\n"
      "  - {name: ip1, type: InnerProduct, bottom: x, top: h, inner_product_param: {num_output: 2, weight_filler: "
      "{type: constant, value: 1}}}\n"
      "  - {name: relu, type: ReLU, bottom: h, top: h, relu_param: {engine: ENGINE}}\n"
      "  - {name: ip2, type: InnerProduct, bottom: h, top: out, inner_product_param: {num_output: 1, weight_filler: "
      "{type: constant, value: 1}}}\n"
      "  - {name: loss, type: EuclideanLoss, bottom: [out, y], top: loss}\n"
      "base_lr: 0.1\nmax_iter: 10\n";
  const auto make = [&](const std::string& engine) {
    std::string yaml = net;
    yaml.replace(yaml.find("ENGINE"), 6, engine);
    auto j = make_job(yaml);
    set(j->blob("x"), {std::nanf(""), 1});
    set(j->blob("y"), {1});
    return j;
  };
  SUBCASE("NaN in the data that oneDNN's ReLU hides from the loss") {
    auto j = make("ONEDNN");
    CHECK_THROWS_WITH_AS(
        step(*j, 3),
        doctest::Contains("training diverged at iteration 0: after the update, layer 'ip1' parameter 0 holds NaN"),
        Diverged);
  }
  SUBCASE("NaN that only BatchNorm's running statistics keep (frozen parameters, which the update skips)") {
    auto j = make_job(
        "net:\n"
        "  name: stats\n"
        "  layer:\n"
        "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [2, 2]}, {dim: [2, 1]}]}}\n"
        "  - {name: bn, type: BatchNorm, bottom: x, top: n}\n"
        "  - {name: relu, type: ReLU, bottom: n, top: n, relu_param: {engine: ONEDNN}}\n"
        "  - {name: ip, type: InnerProduct, bottom: n, top: out, inner_product_param: {num_output: 1, weight_filler: "
        "{type: constant, value: 1}}}\n"
        "  - {name: loss, type: EuclideanLoss, bottom: [out, y], top: loss}\n"
        "base_lr: 0.1\nmax_iter: 10\n");
    set(j->blob("x"), {std::nanf(""), 1, 2, 3});
    set(j->blob("y"), {1, 0});
    CHECK_THROWS_WITH_AS(
        step(*j, 3),
        doctest::Contains("training diverged at iteration 0: after the update, layer 'bn' parameter 0 holds NaN"),
        Diverged);
  }
  SUBCASE("the same with Caffe's ReLU, where the loss shows it") {
    auto j = make("CAFFE");
    CHECK_THROWS_WITH_AS(step(*j, 3),
                         doctest::Contains("training diverged at iteration 0: the loss is not a finite number"), Error);
  }
}

TEST_CASE("solver: a loss that stops being finite stops training before the update, naming the iteration") {
  SUBCASE("NaN in the data: at the first iteration, weights untouched") {
    auto j = make_job(tiny_net("") + "base_lr: 0.1\nmax_iter: 10\n");
    init_tiny(*j);
    set(j->blob("x"), {std::nanf(""), 2});
    CHECK_THROWS_WITH_AS(step(*j, 3),
                         doctest::Contains("training diverged at iteration 0: the loss is not a finite number "
                                           "(loss = nan) (learning rate 0.1). Stopped before the update"),
                         Diverged);  // its own type: train adds no second account of the stop
    CHECK(j->solver->iter() == 0);
    check_close(j->param("ip", 0), {0.5, -1});  // no NaN step was applied
    check_close(j->param("ip", 1), {0.25});
  }
  SUBCASE("a rate so large the weights overflow: at the next iteration, its weights kept") {
    auto j = make_job(tiny_net("") + "base_lr: 1e30\nmax_iter: 10\n");
    init_tiny(*j);
    CHECK_THROWS_WITH_AS(
        step(*j, 3),
        doctest::Contains("training diverged at iteration 1: the loss is not a finite number (loss = inf)"), Diverged);
    CHECK(j->solver->iter() == 1);
    // One step of W -= 1e30·dW with dW = [-2.25, -4.5]: huge but finite.
    CHECK(j->param("ip", 0).cpu_data()[0] == doctest::Approx(2.25e30));
    CHECK(std::isfinite(j->param("ip", 0).cpu_data()[1]));
  }
}
