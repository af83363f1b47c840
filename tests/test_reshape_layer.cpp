#include "layer_test_util.hpp"

using namespace crema;

namespace {

std::vector<int> reshaped(const std::string& params, const std::vector<int>& shape = {2, 3, 6, 5}) {
  return test::top_shape("{type: Reshape, reshape_param: " + params + "}", shape);
}

using Shape = std::vector<int>;

}  // namespace

TEST_CASE("Reshape: 0 copies a bottom dimension, one -1 is inferred") {
  CHECK(reshaped("{shape: {dim: [0, -1]}}") == Shape{2, 90});
  CHECK(reshaped("{shape: {dim: [0, 0, 0, 0]}}") == Shape{2, 3, 6, 5});
  CHECK(reshaped("{shape: {dim: [0, 3, 10, -1]}}") == Shape{2, 3, 10, 3});
  CHECK(reshaped("{shape: {dim: [-1, 0, 2]}}") == Shape{30, 3, 2});
  CHECK(reshaped("{shape: {dim: [6, 30]}}") == Shape{6, 30});
  CHECK(reshaped("{shape: {dim: [0, -1, 1, 1]}}") == Shape{2, 90, 1, 1});
}

TEST_CASE("Reshape: axis and num_axes pick the replaced range") {
  CHECK(reshaped("{axis: 1, shape: {dim: [3, 10, -1]}}") == Shape{2, 3, 10, 3});
  // num_axes 0 inserts axes without replacing any.
  CHECK(reshaped("{axis: 0, num_axes: 0, shape: {dim: [1, 1, 1]}}") == Shape{1, 1, 1, 2, 3, 6, 5});
  CHECK(reshaped("{axis: 2, num_axes: 0, shape: {dim: [1, 1, 1]}}") == Shape{2, 3, 1, 1, 1, 6, 5});
  CHECK(reshaped("{axis: -1, num_axes: 0, shape: {dim: [1, 1, 1]}}") == Shape{2, 3, 6, 5, 1, 1, 1});
  // Flatten the middle two axes; 0 counts from `axis`.
  CHECK(reshaped("{axis: 1, num_axes: 2, shape: {dim: [-1]}}") == Shape{2, 18, 5});
  CHECK(reshaped("{axis: 1, num_axes: 2, shape: {dim: [0, -1]}}") == Shape{2, 3, 6, 5});
}

TEST_CASE("Reshape rejects impossible shapes") {
  CHECK_THROWS_AS(test::make_layer("{type: Reshape, reshape_param: {shape: {dim: [-1, 3, -1]}}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Reshape, reshape_param: {shape: {dim: [-2]}}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Reshape, reshape_param: {shape: {dims: [1]}}}"), ConfigError);
  CHECK_THROWS_AS(reshaped("{shape: {dim: [7, -1]}}"), ConfigError);          // 180 is not divisible by 7
  CHECK_THROWS_AS(reshaped("{shape: {dim: [2, 3]}}"), ConfigError);           // count 6 != 180
  CHECK_THROWS_AS(reshaped("{shape: {dim: [0, 0, 0, 0, 0]}}"), ConfigError);  // no fifth axis to copy
  CHECK_THROWS_AS(reshaped("{axis: 5, shape: {dim: [1]}}"), ConfigError);
  CHECK_THROWS_AS(reshaped("{axis: 3, num_axes: 2, shape: {dim: [1]}}"), ConfigError);
}

TEST_CASE("Reshape shares data, follows a new bottom shape, and hands its gradient back") {
  auto t = test::make_layer("{type: Reshape, reshape_param: {shape: {dim: [0, -1]}}}");
  Blob x({2, 3, 2}), y;
  Rng rng(1);
  test::fill_gaussian(x, rng);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  test::check_view_forward_backward(*t.layer, ctx, x, y);
  CHECK(y.shape() == Shape{2, 6});
  // A larger batch later: forward reshapes again and shares the new memory.
  x.reshape({4, 3, 2});
  test::fill_gaussian(x, rng);
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == Shape{4, 6});
  CHECK(y.cpu_data() == x.cpu_data());
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, {&x}), ConfigError);  // no in-place
}

TEST_CASE("Reshape gradient") {
  test::check_gradients("{type: Reshape, reshape_param: {shape: {dim: [0, -1, 2]}}}", {.shape = {2, 3, 2, 2}});
}
