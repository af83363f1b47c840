#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Probabilities (2, 3) and labels 1, 2: p of the labels 0.5 and 0.8.
const std::vector<float> kProb = {0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f};

}  // namespace

TEST_CASE("MultinomialLogisticLoss forward and backward") {
  auto t = test::make_layer("{type: MultinomialLogisticLoss, loss_weight: 2}");
  Blob p({2, 3}), label({2}), loss;
  test::set_values(p, kProb);
  test::set_values(label, {1, 2});
  Context ctx(1);
  t.layer->setup(ctx, {&p, &label}, {&loss});
  // -(ln 0.5 + ln 0.8) / 2, weighted by 2.
  CHECK(t.layer->forward(ctx, {&p, &label}, {&loss}) == doctest::Approx(2 * 0.45814537f));
  CHECK(loss.cpu_data()[0] == doctest::Approx(0.45814537f));
  loss.set_diff(2.f);
  p.set_diff(9.f);
  t.layer->backward(ctx, {&loss}, {true, false}, {&p, &label});
  // -w / (N p) at the labels, 0 elsewhere.
  const float want[] = {0, -2.f / (2 * 0.5f), 0, 0, 0, -2.f / (2 * 0.8f)};
  for (int i = 0; i < 6; ++i) CHECK(p.cpu_diff()[i] == doctest::Approx(want[i]));
}

TEST_CASE("MultinomialLogisticLoss clamps a zero probability at 1e-20") {
  auto t = test::make_layer("{type: MultinomialLogisticLoss}");
  Blob p({1, 2}), label({1}), loss;
  test::set_values(p, {0, 1});
  test::set_values(label, {0});
  Context ctx(1);
  t.layer->setup(ctx, {&p, &label}, {&loss});
  t.layer->forward(ctx, {&p, &label}, {&loss});
  CHECK(loss.cpu_data()[0] == doctest::Approx(46.0517019f));  // -ln 1e-20
}

TEST_CASE("MultinomialLogisticLoss reports a bad label and a label count that does not match") {
  auto t = test::make_layer("{name: mll, type: MultinomialLogisticLoss}");
  Blob p({2, 3}), label({2}), loss, label3({3});
  test::set_values(p, kProb);
  test::set_values(label, {1, 3});
  Context ctx(1);
  t.layer->setup(ctx, {&p, &label}, {&loss});
  try {
    t.layer->forward(ctx, {&p, &label}, {&loss});
    FAIL("no error for label 3");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("mll") != std::string::npos);
    CHECK(msg.find("[0, 3)") != std::string::npos);
  }
  CHECK_THROWS_AS(t.layer->setup(ctx, {&p, &label3}, {&loss}), ConfigError);
}

TEST_CASE("MultinomialLogisticLoss gradient") {
  auto t = test::make_layer("{type: MultinomialLogisticLoss, loss_weight: 1.5}");
  Blob p({3, 4, 1, 1}), label({3}), loss;
  Rng rng(2);
  test::fill_uniform(p, rng, 0.2f, 1.f);
  test::set_values(label, {3, 0, 2});
  test::GradCheck opt;
  opt.bottoms = {0};
  opt.step = 1e-3f;
  test::check_gradients(*t.layer, {&p, &label}, {&loss}, opt);
}
