#include <spdlog/fmt/fmt.h>

#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Pair 0 is similar, with a - b = (0, 2), d^2 = 4; pair 1 is dissimilar, with
// a - b = (-0.3, -0.4), d = 0.5.
struct Pairs {
  Blob a{{2, 2}}, b{{2, 2}}, y{{2}}, loss;
  Pairs() {
    test::set_values(a, {1, 2, 0, 0});
    test::set_values(b, {1, 0, 0.3f, 0.4f});
    test::set_values(y, {1, 0});
  }
};

struct Result {
  float loss;
  std::vector<float> da, db;
};

Result run(const std::string& cfg) {
  CAPTURE(cfg);
  auto t = test::make_layer(cfg);
  Pairs p;
  Context ctx(1);
  t.layer->setup(ctx, {&p.a, &p.b, &p.y}, {&p.loss});
  t.layer->forward(ctx, {&p.a, &p.b, &p.y}, {&p.loss});
  p.loss.set_diff(1.f);
  p.y.set_diff(-5.f);
  t.layer->backward(ctx, {&p.loss}, {true, true, false}, {&p.a, &p.b, &p.y});
  CHECK(p.y.cpu_diff()[0] == -5.f);
  return {p.loss.cpu_data()[0], {p.a.cpu_diff(), p.a.cpu_diff() + 4}, {p.b.cpu_diff(), p.b.cpu_diff() + 4}};
}

void check_grad(const Result& r, const std::vector<float>& want_da) {
  for (size_t i = 0; i < 4; ++i) {
    CHECK(r.da[i] == doctest::Approx(want_da[i]));
    CHECK(r.db[i] == doctest::Approx(-want_da[i]));
  }
}

}  // namespace

TEST_CASE("ContrastiveLoss with the default margin 1") {
  // (4 + (1 - 0.5)^2) / (2 * 2).
  Result r = run("{type: ContrastiveLoss}");
  CHECK(r.loss == doctest::Approx(1.0625f));
  // Similar: (a - b) / N. Dissimilar: -(margin - d) / (d + 1e-4) (a - b) / N.
  const float f = -0.5f / 0.5001f / 2.f;
  check_grad(r, {0, 1, f * -0.3f, f * -0.4f});
}

TEST_CASE("ContrastiveLoss legacy_version uses margin - d^2") {
  // (4 + (1 - 0.25)) / 4; the dissimilar gradient is -(a - b) / N.
  Result r = run("{type: ContrastiveLoss, contrastive_loss_param: {legacy_version: true}}");
  CHECK(r.loss == doctest::Approx(1.1875f));
  check_grad(r, {0, 1, 0.15f, 0.2f});
}

TEST_CASE("ContrastiveLoss pairs beyond the margin contribute nothing") {
  Result r = run("{type: ContrastiveLoss, contrastive_loss_param: {margin: 0.4}}");  // d = 0.5 > 0.4
  CHECK(r.loss == doctest::Approx(1.f));
  check_grad(r, {0, 1, 0, 0});
  r = run("{type: ContrastiveLoss, contrastive_loss_param: {margin: 0.2, legacy_version: true}}");  // d^2 = 0.25
  CHECK(r.loss == doctest::Approx(1.f));
  check_grad(r, {0, 1, 0, 0});
}

TEST_CASE("ContrastiveLoss shape errors") {
  auto t = test::make_layer("{type: ContrastiveLoss}");
  Blob a({2, 3}), b({2, 4}), y({2}), loss, a2({2, 3}), y3({3});
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &b, &y}, {&loss}), ConfigError);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &a2, &y3}, {&loss}), ConfigError);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &a2}, {&loss}), ConfigError);
}

TEST_CASE("ContrastiveLoss refuses a similarity label other than 0 or 1") {
  // Caffe truncates it (0.5 dissimilar, 2 similar): a distance or damaged data, trained on in silence.
  for (const float bad : {0.5f, 2.f, -1.f}) {
    CAPTURE(bad);
    auto t = test::make_layer("{type: ContrastiveLoss}");
    Pairs p;
    test::set_values(p.y, {1, bad});
    Context ctx(1);
    t.layer->setup(ctx, {&p.a, &p.b, &p.y}, {&p.loss});
    const std::string want = "the similarity label of pair 1 in the batch is " + fmt::format("{}", bad) +
                             "; it must be 1 (similar) or 0 (dissimilar)";
    CHECK_THROWS_WITH_AS(t.layer->forward(ctx, {&p.a, &p.b, &p.y}, {&p.loss}), doctest::Contains(want.c_str()), Error);
  }
}

TEST_CASE("ContrastiveLoss gradient") {
  // A margin wide enough that every dissimilar pair is inside it (no kink nearby).
  const char* cfgs[] = {
      "{type: ContrastiveLoss, contrastive_loss_param: {margin: 6}}",
      "{type: ContrastiveLoss, loss_weight: 2, contrastive_loss_param: {margin: 30, legacy_version: true}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob a({4, 3}), b({4, 3}), y({4}), loss;
    Rng rng(7);
    test::fill_gaussian(a, rng);
    test::fill_gaussian(b, rng);
    test::set_values(y, {1, 0, 0, 1});
    test::GradCheck opt;
    opt.bottoms = {0, 1};
    test::check_gradients(*t.layer, {&a, &b, &y}, {&loss}, opt);
  }
}
