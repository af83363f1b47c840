#include "layer_test_util.hpp"

using namespace crema;

namespace {

Blob argmax(const std::string& yaml, const std::vector<int>& shape, const std::vector<float>& values) {
  CAPTURE(yaml);
  auto t = test::make_layer(yaml);
  Blob x(shape), y;
  test::set_values(x, values);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  // No gradient: backward writes zeros.
  x.set_diff(3.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == 0.f);
  return y;
}

// Two samples of four values; sample 0 has a tie (3 at 1 and 3).
const std::vector<float> kFlat = {1, 3, 2, 3, 5, 0, -1, 4};

// x (2, 3, 2), x[n][c][w]:  n0: c0 = 1 6, c1 = 4 2, c2 = 3 5;  n1: c0 = 0 0, c1 = -1 7, c2 = 2 7.
const std::vector<float> kAxis = {1, 6, 4, 2, 3, 5, 0, 0, -1, 7, 2, 7};

}  // namespace

TEST_CASE("ArgMax per sample, ties go to the larger index") {
  Blob y = argmax("{type: ArgMax}", {2, 4}, kFlat);
  CHECK(y.shape() == std::vector<int>{2, 1, 1});
  test::check_values(y, {3, 0});
  y = argmax("{type: ArgMax, argmax_param: {top_k: 2}}", {2, 4}, kFlat);
  CHECK(y.shape() == std::vector<int>{2, 1, 2});
  test::check_values(y, {3, 1, 0, 3});
}

TEST_CASE("ArgMax out_max_val without axis gives indices then values") {
  Blob y = argmax("{type: ArgMax, argmax_param: {top_k: 2, out_max_val: true}}", {2, 4}, kFlat);
  CHECK(y.shape() == std::vector<int>{2, 2, 2});
  test::check_values(y, {3, 1, 3, 3, 0, 3, 5, 4});
}

TEST_CASE("ArgMax along an axis") {
  Blob y = argmax("{type: ArgMax, argmax_param: {axis: 1}}", {2, 3, 2}, kAxis);
  CHECK(y.shape() == std::vector<int>{2, 1, 2});
  test::check_values(y, {1, 0, 2, 2});
  y = argmax("{type: ArgMax, argmax_param: {axis: 1, top_k: 2}}", {2, 3, 2}, kAxis);
  CHECK(y.shape() == std::vector<int>{2, 2, 2});
  test::check_values(y, {1, 0, 2, 2, 2, 2, 0, 1});
  // With an axis, out_max_val gives the values only.
  y = argmax("{type: ArgMax, argmax_param: {axis: -2, out_max_val: true}}", {2, 3, 2}, kAxis);
  test::check_values(y, {4, 6, 2, 7});
}

TEST_CASE("ArgMax top shape has at least three axes without an axis") {
  CHECK(test::top_shape("{type: ArgMax}", {5, 3}) == std::vector<int>{5, 1, 1});
  CHECK(test::top_shape("{type: ArgMax}", {5, 3, 4, 6}) == std::vector<int>{5, 1, 1, 1});
  CHECK(test::top_shape("{type: ArgMax, argmax_param: {axis: 3, top_k: 2}}", {5, 3, 4, 6}) ==
        std::vector<int>{5, 3, 4, 2});
}

TEST_CASE("ArgMax rejects a top_k below 1 or beyond the values ranked") {
  CHECK_THROWS_AS(test::make_layer("{type: ArgMax, argmax_param: {top_k: 0}}"), ConfigError);
  CHECK_THROWS_AS(test::top_shape("{type: ArgMax, argmax_param: {top_k: 5}}", {2, 4}), ConfigError);
  CHECK_THROWS_AS(test::top_shape("{type: ArgMax, argmax_param: {axis: 1, top_k: 4}}", {2, 3, 5}), ConfigError);
}
