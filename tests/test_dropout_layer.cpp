#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Dropout TRAIN keeps about 1 - p of the elements, scaled by 1 / (1 - p)") {
  for (float p : {0.5f, 0.2f}) {
    auto t = test::make_layer("{type: Dropout, dropout_param: {dropout_ratio: " + std::to_string(p) + "}}");
    Blob x({10, 100}), y;
    x.set_data(1.f);
    Context ctx(7);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    int kept = 0;
    for (int i = 0; i < y.count(); ++i) {
      const float v = y.cpu_data()[i];
      if (v != 0.f) {
        CHECK(v == doctest::Approx(1.f / (1.f - p)));
        ++kept;
      }
    }
    // 1000 draws: the kept fraction's standard deviation is at most 0.016.
    CHECK(std::fabs(static_cast<float>(kept) / static_cast<float>(y.count()) - (1.f - p)) < 0.05f);
    // Backward applies the same mask and scale.
    y.set_diff(1.f);
    t.layer->backward(ctx, {&y}, {true}, {&x});
    for (int i = 0; i < y.count(); ++i) CHECK(x.cpu_diff()[i] == y.cpu_data()[i]);
  }
}

TEST_CASE("Dropout in place remembers its mask for backward") {
  auto t = test::make_layer("{type: Dropout}");
  Blob x({4, 50}), original({4, 50});
  Rng rng(11);
  test::fill_uniform(x, rng, 0.5f, 1.5f);  // no zeros, so a zero top means "dropped"
  original.copy_from(x);
  Context ctx(3);
  t.layer->setup(ctx, {&x}, {&x});
  t.layer->forward(ctx, {&x}, {&x});
  std::vector<float> y(x.cpu_data(), x.cpu_data() + x.count());
  x.set_diff(3.f);
  t.layer->backward(ctx, {&x}, {true}, {&x});
  int dropped = 0;
  for (int i = 0; i < x.count(); ++i) {
    const size_t k = static_cast<size_t>(i);
    if (y[k] == 0.f) {
      ++dropped;
      CHECK(x.cpu_diff()[i] == 0.f);
    } else {
      CHECK(y[k] == doctest::Approx(2.f * original.cpu_data()[i]));
      CHECK(x.cpu_diff()[i] == doctest::Approx(6.f));
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < x.count());
}

TEST_CASE("Dropout TEST phase is the identity") {
  auto t = test::make_layer("{type: Dropout, dropout_param: {dropout_ratio: 0.7}}", Phase::TEST);
  Blob x({3, 4}), y;
  Rng rng(1);
  test::fill_gaussian(x, rng);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  for (int i = 0; i < x.count(); ++i) {
    CHECK(y.cpu_data()[i] == x.cpu_data()[i]);
    y.mutable_cpu_diff()[i] = static_cast<float>(i);
  }
  t.layer->backward(ctx, {&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == static_cast<float>(i));
}

TEST_CASE("Dropout scale_train: false masks without scaling and scales by 1 - p at TEST") {
  const std::string cfg = "{type: Dropout, dropout_param: {dropout_ratio: 0.25, scale_train: false}}";
  Blob x({2, 20}), y;
  Rng rng(2);
  test::fill_uniform(x, rng, 1.f, 2.f);
  Context ctx(4);
  auto train = test::make_layer(cfg);
  train.layer->setup(ctx, {&x}, {&y});
  train.layer->forward(ctx, {&x}, {&y});
  for (int i = 0; i < x.count(); ++i) CHECK((y.cpu_data()[i] == 0.f || y.cpu_data()[i] == x.cpu_data()[i]));
  auto test_phase = test::make_layer(cfg, Phase::TEST);
  test_phase.layer->setup(ctx, {&x}, {&y});
  test_phase.layer->forward(ctx, {&x}, {&y});
  for (int i = 0; i < x.count(); ++i) CHECK(y.cpu_data()[i] == doctest::Approx(0.75f * x.cpu_data()[i]));
}

TEST_CASE("Dropout rejects a ratio outside 0 <= p < 1") {
  CHECK_THROWS_AS(test::make_layer("{type: Dropout, dropout_param: {dropout_ratio: 1}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Dropout, dropout_param: {dropout_ratio: -0.1}}"), ConfigError);
}

TEST_CASE("Dropout gradient") {
  for (const char* cfg : {"{type: Dropout}", "{type: Dropout, dropout_param: {dropout_ratio: 0.3}}"}) {
    CAPTURE(std::string(cfg));
    test::check_gradients(cfg, {.shape = {2, 3, 4, 5}});
  }
}
