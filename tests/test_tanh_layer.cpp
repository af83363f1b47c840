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
  Rng rng(5);
  Blob x({3, 7}), y, x_in_place({3, 7});
  test::fill_gaussian(x, rng);
  x_in_place.copy_from(x);
  Context ctx(1);
  auto out = test::make_layer("{type: TanH}");
  auto in = test::make_layer("{type: TanH}");
  out.layer->setup(ctx, {&x}, {&y});
  in.layer->setup(ctx, {&x_in_place}, {&x_in_place});
  out.layer->forward(ctx, {&x}, {&y});
  in.layer->forward(ctx, {&x_in_place}, {&x_in_place});
  for (int i = 0; i < x.count(); ++i) y.mutable_cpu_diff()[i] = x_in_place.mutable_cpu_diff()[i] = 0.1f * i - 1;
  out.layer->backward(ctx, {&y}, {true}, {&x});
  in.layer->backward(ctx, {&x_in_place}, {true}, {&x_in_place});
  for (int i = 0; i < x.count(); ++i) {
    CHECK(x_in_place.cpu_data()[i] == y.cpu_data()[i]);
    CHECK(x_in_place.cpu_diff()[i] == x.cpu_diff()[i]);
  }
}

TEST_CASE("TanH gradient") {
  auto t = test::make_layer("{type: TanH, tanh_param: {engine: DEFAULT}}");
  Blob x({2, 3, 4, 5}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  test::check_gradients(*t.layer, {&x}, {&y});
}
