#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("TanH forward") {
  auto t = test::make_layer("{type: TanH}");
  Blob x({5}), y;
  // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6
  const float in[] = {0, std::log(2.f), -std::log(2.f), 50, -50};
  std::copy(in, in + 5, x.mutable_cpu_data());
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float want[] = {0, 0.6f, -0.6f, 1, -1};
  for (int i = 0; i < 5; ++i) CHECK(y.cpu_data()[i] == doctest::Approx(want[i]));
}

TEST_CASE("TanH in place gives the same top and gradient as out of place") {
  test::check_in_place_matches_out_of_place("{type: TanH}", {.shape = {3, 7}, .seed = 5});
}

TEST_CASE("TanH gradient") {
  test::check_gradients("{type: TanH, tanh_param: {engine: DEFAULT}}", {.shape = {2, 3, 4, 5}});
}
