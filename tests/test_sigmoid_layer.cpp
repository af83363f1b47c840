#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Sigmoid forward is 1 / (1 + e^-x), saturating without overflow") {
  auto t = test::make_layer("{type: Sigmoid}");
  Blob x({1, 5}), y;
  const float in[] = {0, std::log(3.f), -std::log(3.f), 100, -100};
  std::copy(in, in + 5, x.mutable_cpu_data());
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float want[] = {0.5f, 0.75f, 0.25f, 1, 0};
  for (int i = 0; i < 5; ++i) CHECK(y.cpu_data()[i] == doctest::Approx(want[i]));
}

TEST_CASE("Sigmoid in place gives the same top and gradient as out of place") {
  test::check_in_place_matches_out_of_place("{type: Sigmoid}", {.shape = {2, 3, 4}, .stddev = 2.f, .seed = 5});
}

TEST_CASE("Sigmoid gradient") {
  test::check_gradients("{type: Sigmoid, sigmoid_param: {engine: CAFFE}}", {.shape = {2, 3, 4, 5}, .stddev = 2.f});
}
