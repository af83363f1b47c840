#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Softmax forward over channels, stable for large scores") {
  auto t = test::make_layer("{type: Softmax}");
  // Scores log(1), log(2), log(3) give 1/6, 1/3, 1/2; adding 1000 to a row changes
  // nothing (exp(1000) alone would overflow).
  Blob x({2, 3}), y;
  const float l2 = std::log(2.f), l3 = std::log(3.f);
  const float in[] = {0, l2, l3, 1000 + l3, 1000 + l2, 1000};
  std::copy(in, in + 6, x.mutable_cpu_data());
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float want[] = {1.f / 6, 1.f / 3, 0.5f, 0.5f, 1.f / 3, 1.f / 6};
  for (int i = 0; i < 6; ++i) CHECK(y.cpu_data()[i] == doctest::Approx(want[i]).epsilon(1e-4));
}

TEST_CASE("Softmax normalises along the chosen axis") {
  // x: (2, 3, 2). Along axis 1 the three values at (n, :, w) sum to 1; along axis 2
  // (and -1) the two values at (n, c, :) do.
  Blob x({2, 3, 2}), y;
  Rng rng(9);
  test::fill_gaussian(x, rng);
  Context ctx(1);
  {
    auto t = test::make_layer("{type: Softmax, softmax_param: {axis: 1}}");
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    for (int n = 0; n < 2; ++n)
      for (int w = 0; w < 2; ++w) {
        float sum = 0, denom = 0;
        for (int c = 0; c < 3; ++c) {
          sum += y.cpu_data()[(n * 3 + c) * 2 + w];
          denom += std::exp(x.cpu_data()[(n * 3 + c) * 2 + w]);
        }
        CHECK(sum == doctest::Approx(1.f));
        CHECK(y.cpu_data()[n * 6 + w] == doctest::Approx(std::exp(x.cpu_data()[n * 6 + w]) / denom));
      }
  }
  for (const char* cfg : {"{type: Softmax, softmax_param: {axis: 2}}", "{type: Softmax, softmax_param: {axis: -1}}"}) {
    auto t = test::make_layer(cfg);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    for (int r = 0; r < 6; ++r) {
      const float a = x.cpu_data()[2 * r], b = x.cpu_data()[2 * r + 1];
      CHECK(y.cpu_data()[2 * r] == doctest::Approx(1.f / (1.f + std::exp(b - a))));
      CHECK(y.cpu_data()[2 * r] + y.cpu_data()[2 * r + 1] == doctest::Approx(1.f));
    }
  }
}

TEST_CASE("Softmax in place gives the same top and gradient as out of place") {
  test::check_in_place_matches_out_of_place("{type: Softmax}", {.shape = {2, 4, 3}, .seed = 5}, test::Compare::approx);
}

TEST_CASE("Softmax gradient") {
  for (const char* cfg : {"{type: Softmax}", "{type: Softmax, softmax_param: {axis: 0}}",
                          "{type: Softmax, softmax_param: {axis: -1, engine: CAFFE}}"}) {
    CAPTURE(std::string(cfg));
    test::check_gradients(cfg, {.shape = {2, 3, 2, 2}});
  }
}
