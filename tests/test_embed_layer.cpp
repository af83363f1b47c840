#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

TEST_CASE("Embed forward: each index reads its table row, plus the bias") {
  auto t = test::make_layer("{type: Embed, embed_param: {num_output: 2, input_dim: 3}}");
  Blob x({2, 2}), y;
  set_values(x, {2, 0, 1, 2});
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  REQUIRE(t.layer->blobs().size() == 2);
  CHECK(t.layer->blobs()[0]->shape() == std::vector<int>{3, 2});  // (input_dim, num_output)
  CHECK(t.layer->blobs()[1]->shape() == std::vector<int>{2});
  set_values(*t.layer->blobs()[0], {1, 2, 3, 4, 5, 6});
  set_values(*t.layer->blobs()[1], {0.5f, -1});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{2, 2, 2});
  check_values(y, {5.5f, 5, 1.5f, 1, 3.5f, 3, 5.5f, 5});
}

TEST_CASE("Embed without bias, with fillers") {
  auto t = test::make_layer(
      "{type: Embed, embed_param: {num_output: 3, input_dim: 2, bias_term: false, "
      "weight_filler: {type: constant, value: 7}}}");
  Blob x({1}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  REQUIRE(t.layer->blobs().size() == 1);
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{1, 3});
  check_values(y, {7, 7, 7});
}

TEST_CASE("Embed backward adds each top row to the row it read, repeated indices summing") {
  auto t = test::make_layer("{type: Embed, embed_param: {num_output: 2, input_dim: 3}}");
  Blob x({3}), y;
  set_values(x, {1, 1, 0});
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  set_values(y, {1, 2, 3, 4, 5, 6});
  std::copy(y.cpu_data(), y.cpu_data() + 6, y.mutable_cpu_diff());
  for (auto& b : t.layer->blobs()) b->set_diff(0.f);
  x.set_diff(3.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  const std::vector<float> dw = {5, 6, 4, 6, 0, 0};
  for (int i = 0; i < 6; ++i) CHECK(t.layer->blobs()[0]->cpu_diff()[i] == dw[static_cast<size_t>(i)]);
  CHECK(t.layer->blobs()[1]->cpu_diff()[0] == 9);
  CHECK(t.layer->blobs()[1]->cpu_diff()[1] == 12);
  CHECK(x.cpu_diff()[0] == 0.f);  // indices have no gradient
  CHECK_FALSE(t.layer->allow_force_backward(0));
}

TEST_CASE("Embed: an index outside the table or not whole is a clear error") {
  auto t = test::make_layer("{type: Embed, embed_param: {num_output: 2, input_dim: 3}}");
  Blob x({2}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  // Each kind of bad value with its own advice: only a value past the end needs a larger table.
  for (const auto& [bad, said] : std::vector<std::pair<float, std::string>>{
           {3.f, "value 3 at position 1 of bottom 0 is past the last index 2; raise embed_param.input_dim"},
           {-1.f, "value -1 at position 1 of bottom 0 is negative; indices count from 0, in [0, 3)"},
           {0.5f, "value 0.5 at position 1 of bottom 0 is not a whole number; indices are whole numbers in [0, 3)"},
           {std::nanf(""), "is not a finite number; check the input data"}}) {
    CAPTURE(bad);
    set_values(x, {0, bad});
    CHECK_THROWS_WITH_AS(t.layer->forward(ctx, {&x}, {&y}), doctest::Contains(said.c_str()), Error);
  }
  // Indices of a sequence (T, N): the position as coordinates.
  Blob seq({2, 3}), seq_y;
  t.layer->reshape({&seq}, {&seq_y});
  set_values(seq, {0, 1, 2, 1, 7, 0});
  CHECK_THROWS_WITH_AS(
      t.layer->forward(ctx, {&seq}, {&seq_y}),
      doctest::Contains("value 7 at position (1, 1) of bottom 0 of shape 2 3 (6) is past the last index"), Error);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Embed, embed_param: {num_output: 2}}"), doctest::Contains("input_dim"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Embed, embed_param: {input_dim: 2}}"), doctest::Contains("num_output"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Embed, embed_param: {num_output: 2, input_dim: 0}}"),
                       doctest::Contains("must be positive"), ConfigError);
}

TEST_CASE("Embed gradient") {
  auto t = test::make_layer(
      "{type: Embed, embed_param: {num_output: 4, input_dim: 5, weight_filler: {type: gaussian}, "
      "bias_filler: {type: gaussian}}}");
  Blob x({2, 3}), y;
  set_values(x, {4, 0, 2, 2, 1, 4});
  test::GradCheck opt;
  opt.bottoms = {-1};  // no bottom: indices have no gradient
  test::check_gradients(*t.layer, {&x}, {&y}, opt);
}
