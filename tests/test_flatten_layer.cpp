#include "layer_test_util.hpp"

using namespace crema;

namespace {

std::vector<int> flattened_shape(const std::string& cfg, const std::vector<int>& shape) {
  auto t = test::make_layer(cfg);
  Blob x(shape), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  return y.shape();
}

}  // namespace

TEST_CASE("Flatten output shapes for axis and end_axis") {
  const std::vector<int> s = {2, 3, 4, 5};
  CHECK(flattened_shape("{type: Flatten}", s) == std::vector<int>{2, 60});
  CHECK(flattened_shape("{type: Flatten, flatten_param: {axis: 2}}", s) == std::vector<int>{2, 3, 20});
  CHECK(flattened_shape("{type: Flatten, flatten_param: {axis: -2}}", s) == std::vector<int>{2, 3, 20});
  CHECK(flattened_shape("{type: Flatten, flatten_param: {axis: 1, end_axis: 2}}", s) == std::vector<int>{2, 12, 5});
  CHECK(flattened_shape("{type: Flatten, flatten_param: {axis: 0, end_axis: -2}}", s) == std::vector<int>{24, 5});
  CHECK(flattened_shape("{type: Flatten, flatten_param: {axis: 0}}", s) == std::vector<int>{120});
  CHECK_THROWS_AS(flattened_shape("{type: Flatten, flatten_param: {axis: 2, end_axis: 1}}", s), ConfigError);
}

TEST_CASE("Flatten shares data with the bottom and hands its gradient back") {
  auto t = test::make_layer("{type: Flatten}");
  Blob x({2, 3, 2}), y;
  Rng rng(1);
  test::fill_gaussian(x, rng);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.cpu_data() == x.cpu_data());
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = static_cast<float>(i);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == static_cast<float>(i));
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, {&x}), ConfigError);  // no in-place
}

TEST_CASE("Flatten gradient") {
  auto t = test::make_layer("{type: Flatten, flatten_param: {axis: 1, end_axis: 2}}");
  Blob x({2, 3, 2, 2}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  test::check_gradients(*t.layer, {&x}, {&y});
}
