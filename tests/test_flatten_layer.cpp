#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Flatten output shapes for axis and end_axis") {
  const std::vector<int> s = {2, 3, 4, 5};
  CHECK(test::top_shape("{type: Flatten}", s) == std::vector<int>{2, 60});
  CHECK(test::top_shape("{type: Flatten, flatten_param: {axis: 2}}", s) == std::vector<int>{2, 3, 20});
  CHECK(test::top_shape("{type: Flatten, flatten_param: {axis: -2}}", s) == std::vector<int>{2, 3, 20});
  CHECK(test::top_shape("{type: Flatten, flatten_param: {axis: 1, end_axis: 2}}", s) == std::vector<int>{2, 12, 5});
  CHECK(test::top_shape("{type: Flatten, flatten_param: {axis: 0, end_axis: -2}}", s) == std::vector<int>{24, 5});
  CHECK(test::top_shape("{type: Flatten, flatten_param: {axis: 0}}", s) == std::vector<int>{120});
  CHECK_THROWS_AS(test::top_shape("{type: Flatten, flatten_param: {axis: 2, end_axis: 1}}", s), ConfigError);
}

TEST_CASE("Flatten shares data with the bottom and hands its gradient back") {
  auto t = test::make_layer("{type: Flatten}");
  Blob x = test::gaussian_blob({.shape = {2, 3, 2}, .seed = 1}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  test::check_view_forward_backward(*t.layer, ctx, x, y);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, {&x}), ConfigError);  // no in-place
}

TEST_CASE("Flatten gradient") {
  test::check_gradients("{type: Flatten, flatten_param: {axis: 1, end_axis: 2}}", {.shape = {2, 3, 2, 2}});
}
