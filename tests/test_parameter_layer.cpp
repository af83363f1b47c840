#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::set_values;

TEST_CASE("Parameter: its top is the parameter blob, data and gradient") {
  auto t = test::make_layer("{type: Parameter, parameter_param: {shape: {dim: [2, 3]}}}");
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, {}, {&y});
  REQUIRE(t.layer->blobs().size() == 1);
  Blob& p = *t.layer->blobs()[0];
  CHECK(p.shape() == std::vector<int>{2, 3});
  CHECK(p.asum_diff() == 0.0);
  for (int i = 0; i < 6; ++i) CHECK(p.cpu_data()[i] == 0.f);  // Caffe: no filler, zeros
  set_values(p, {1, 2, 3, 4, 5, 6});
  t.layer->forward(ctx, {}, {&y});
  CHECK(y.shape() == std::vector<int>{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(y.cpu_data()[i] == static_cast<float>(i + 1));
  // A consumer's gradient written into the top is the parameter's gradient.
  y.mutable_cpu_diff()[4] = 2.5f;
  t.layer->backward(ctx, {&y}, {}, {});
  CHECK(p.cpu_diff()[4] == 2.5f);
}

TEST_CASE("Parameter without a shape is one value, two shapes are an error") {
  auto t = test::make_layer("{type: Parameter}");
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, {}, {&y});
  CHECK(y.num_axes() == 0);
  CHECK(y.count() == 1);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Parameter, parameter_param: {shape: [{dim: [1]}, {dim: [2]}]}}"),
                       doctest::Contains("one shape"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Parameter, parameter_param: {shape: {dims: [1]}}}"),
                       doctest::Contains("did you mean 'dim'"), ConfigError);
}

TEST_CASE("Parameter gradient") {
  auto t = test::make_layer("{type: Parameter, parameter_param: {shape: {dim: [3, 2]}}}");
  Blob y;
  test::check_gradients(*t.layer, {}, {&y});
}
