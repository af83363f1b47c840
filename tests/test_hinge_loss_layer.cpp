#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Scores (2, 3), labels 2 and 1. Margins max(0, 1 -+ x):
//   sample 0: 1.5  0.8  0     (the label's score 1.5 clears the margin)
//   sample 1: 0    0.6  1.1
const std::vector<float> kScores = {0.5f, -0.2f, 1.5f, -1, 0.4f, 0.1f};

struct Result {
  float loss;
  std::vector<float> dx;
};

Result run(const std::string& cfg) {
  CAPTURE(cfg);
  auto t = test::make_layer(cfg);
  Blob x({2, 3}), label({2}), loss;
  test::set_values(x, kScores);
  test::set_values(label, {2, 1});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&loss});
  t.layer->forward(ctx, {&x, &label}, {&loss});
  loss.set_diff(1.f);
  t.layer->backward(ctx, {&loss}, {true, false}, {&x, &label});
  return {loss.cpu_data()[0], {x.cpu_diff(), x.cpu_diff() + 6}};
}

void check_dx(const Result& r, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i) CHECK(r.dx[i] == doctest::Approx(want[i]));
}

}  // namespace

TEST_CASE("HingeLoss L1 (the default)") {
  Result r = run("{type: HingeLoss}");
  CHECK(r.loss == doctest::Approx(4.0f / 2));
  // +-1 / N where the margin is positive; the label's score is pushed up.
  check_dx(r, {0.5f, 0.5f, 0, 0, -0.5f, 0.5f});
  CHECK(run("{type: HingeLoss, hinge_loss_param: {norm: L1}}").loss == doctest::Approx(2.f));
}

TEST_CASE("HingeLoss L2 squares the margins") {
  Result r = run("{type: HingeLoss, hinge_loss_param: {norm: L2}}");
  CHECK(r.loss == doctest::Approx(4.46f / 2));
  // 2 s m / N.
  check_dx(r, {1.5f, 0.8f, 0, 0, -0.6f, 1.1f});
}

TEST_CASE("HingeLoss rejects an unknown norm") {
  CHECK_THROWS_AS(test::make_layer("{type: HingeLoss, hinge_loss_param: {norm: L3}}"), ConfigError);
}

TEST_CASE("HingeLoss gradient") {
  for (const char* cfg : {"{type: HingeLoss}", "{type: HingeLoss, loss_weight: 2, hinge_loss_param: {norm: L2}}"}) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob x({3, 5}), label({3}), loss;
    Rng rng(4);
    test::fill_uniform(x, rng, -0.8f, 0.8f);  // every margin positive: no kink nearby
    test::set_values(label, {4, 0, 2});
    test::GradCheck opt;
    opt.bottoms = {0};
    test::check_gradients(*t.layer, {&x, &label}, {&loss}, opt);
  }
}
