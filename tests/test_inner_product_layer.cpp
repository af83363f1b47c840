#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;

using test::check_values;
using test::set_values;

TEST_CASE("InnerProduct forward, and with transpose: true the weight is stored as (K, N)") {
  // x (2, 3), W (2, 3) = [[1, 0, -1], [2, 1, 0]], b = [0.5, -1]: y = x Wᵀ + b.
  const std::vector<float> want = {-1.5f, 3.f, -1.5f, 12.f};
  struct Case {
    const char* yaml;
    std::vector<int> weight_shape;
    std::vector<float> weight;
  };
  for (const Case& c : {Case{"{type: InnerProduct, inner_product_param: {num_output: 2}}", {2, 3}, {1, 0, -1, 2, 1, 0}},
                        Case{"{type: InnerProduct, inner_product_param: {num_output: 2, transpose: true}}",
                             {3, 2},
                             {1, 2, 0, 1, -1, 0}}}) {
    CAPTURE(std::string(c.yaml));
    auto t = test::make_layer(c.yaml);
    Blob x({2, 3}), y;
    set_values(x, {1, 2, 3, 4, 5, 6});
    Context ctx(1);
    t.layer->setup(ctx, {&x}, {&y});
    REQUIRE(t.layer->blobs().size() == 2);
    CHECK(t.layer->blobs()[0]->shape() == c.weight_shape);
    CHECK(t.layer->blobs()[1]->shape() == std::vector<int>{2});
    set_values(*t.layer->blobs()[0], c.weight);
    set_values(*t.layer->blobs()[1], {0.5f, -1.f});
    t.layer->forward(ctx, {&x}, {&y});
    CHECK(y.shape() == std::vector<int>{2, 2});
    check_values(y, want);
  }
}

TEST_CASE("InnerProduct axis: flattens from axis on and keeps the axes before it") {
  Context ctx(1);
  Blob x4({2, 3, 2, 2}), y;
  auto flat = test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 5}}");
  flat.layer->setup(ctx, {&x4}, {&y});
  CHECK(flat.layer->blobs()[0]->shape() == std::vector<int>{5, 12});
  CHECK(y.shape() == std::vector<int>{2, 5});

  // axis 2 on (2, 3, 4): six rows of four; weight all 1 and no bias sums each row.
  Blob x({2, 3, 4});
  for (int i = 0; i < 24; ++i) x.mutable_cpu_data()[i] = static_cast<float>(i);
  auto t = test::make_layer(
      "{type: InnerProduct, inner_product_param: {num_output: 1, axis: -1, bias_term: false, "
      "weight_filler: {type: constant, value: 1}}}");
  t.layer->setup(ctx, {&x}, {&y});
  CHECK(t.layer->blobs().size() == 1);
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{2, 3, 1});
  check_values(y, {6, 22, 38, 54, 70, 86});
}

TEST_CASE("InnerProduct fillers fill the weight and the bias") {
  auto t = test::make_layer(
      "{type: InnerProduct, inner_product_param: {num_output: 3, "
      "weight_filler: {type: uniform, min: 2, max: 3}, bias_filler: {type: constant, value: 7}}}");
  Blob x({4, 5}), y;
  Context ctx(2);
  t.layer->setup(ctx, {&x}, {&y});
  const Blob& w = *t.layer->blobs()[0];
  for (int i = 0; i < w.count(); ++i) CHECK((w.cpu_data()[i] >= 2.f && w.cpu_data()[i] < 3.f));
  for (int i = 0; i < 3; ++i) CHECK(t.layer->blobs()[1]->cpu_data()[i] == 7.f);
}

TEST_CASE("InnerProduct backward accumulates parameter gradients") {
  auto t = test::make_layer(
      "{type: InnerProduct, inner_product_param: {num_output: 3, transpose: true, "
      "weight_filler: {type: gaussian}}}");
  Blob x({4, 5}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  Context ctx(2);
  Layer& layer = *t.layer;
  test::forward_with_random_top_diff(layer, ctx, x, y, rng);
  layer.backward(ctx, {&y}, {false}, {&x});
  // The bias gradient is the column sum of dy.
  for (int o = 0; o < 3; ++o) {
    float sum = 0;
    for (int i = 0; i < 4; ++i) sum += y.cpu_diff()[i * 3 + o];
    CHECK(layer.blobs()[1]->cpu_diff()[o] == doctest::Approx(sum));
  }
  const float once = layer.blobs()[0]->cpu_diff()[7];
  layer.backward(ctx, {&y}, {false}, {&x});
  CHECK(layer.blobs()[0]->cpu_diff()[7] == doctest::Approx(2 * once));
  CHECK(layer.blobs()[1]->cpu_diff()[0] ==
        doctest::Approx(2 * (y.cpu_diff()[0] + y.cpu_diff()[3] + y.cpu_diff()[6] + y.cpu_diff()[9])));
  layer.set_param_propagate_down(0, false);
  layer.backward(ctx, {&y}, {false}, {&x});
  CHECK(layer.blobs()[0]->cpu_diff()[7] == doctest::Approx(2 * once));
}

TEST_CASE("InnerProduct rejects bad configurations and incompatible bottoms") {
  CHECK_THROWS_WITH_AS(test::make_layer("{type: InnerProduct}"), doctest::Contains("num_output"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 2, transposed: true}}"),
                       doctest::Contains("did you mean 'transpose'"), ConfigError);
  auto t = test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 2}}");
  Blob x({2, 3}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  Blob wider({2, 4});
  CHECK_THROWS_WITH_AS(t.layer->forward(ctx, {&wider}, {&y}), doctest::Contains("set up for 3 inputs"), ConfigError);
  auto bad_axis = test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 2, axis: 2}}");
  CHECK_THROWS_WITH_AS(bad_axis.layer->setup(ctx, {&x}, {&y}), doctest::Contains("out of range"), ConfigError);
}

TEST_CASE("InnerProduct gradient") {
  struct Case {
    const char* params;
    std::vector<int> shape;
  };
  const std::vector<Case> cases = {
      {"num_output: 4", {3, 2, 2, 2}},
      {"num_output: 4, transpose: true", {3, 5}},
      {"num_output: 3, bias_term: false", {2, 6}},
      {"num_output: 3, axis: 2", {2, 3, 4}},
  };
  for (const auto& c : cases) {
    const std::string params = c.params;
    CAPTURE(params);
    const std::string yaml = "{type: InnerProduct, inner_product_param: {" + params +
                             ", weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}";
    test::check_gradients(yaml, {.shape = c.shape, .seed = 19});
  }
}
