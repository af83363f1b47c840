#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::fill_counting;
using test::set_values;

namespace {

// Runs Scale (or Bias) `yaml` on x (and an optional second bottom), with the layer's
// parameter blobs set to `params` before setup.
Blob run(const std::string& yaml, Blob& x, Blob* second, const std::vector<std::vector<float>>& params = {}) {
  auto t = test::make_layer(yaml);
  Context ctx(1);
  BlobVec bottom = {&x};
  if (second) bottom.push_back(second);
  Blob y;
  t.layer->setup(ctx, bottom, {&y});
  for (size_t i = 0; i < params.size(); ++i) set_values(*t.layer->blobs()[i], params[i]);
  t.layer->forward(ctx, bottom, {&y});
  return y;
}

}  // namespace

TEST_CASE("Scale forward: a learnt scale per channel, default filler 1") {
  Blob x({2, 2, 2});
  fill_counting(x, 1);  // item 0: c0 1 2, c1 3 4; item 1: c0 5 6, c1 7 8
  check_values(run("{type: Scale}", x, nullptr), {1, 2, 3, 4, 5, 6, 7, 8});
  check_values(run("{type: Scale}", x, nullptr, {{10, -1}}), {10, 20, -3, -4, 50, 60, -7, -8});
  check_values(run("{type: Scale, scale_param: {bias_term: true}}", x, nullptr, {{10, -1}, {0.5f, 1}}),
               {10.5f, 20.5f, -2, -3, 50.5f, 60.5f, -6, -7});
}

TEST_CASE("Scale axis and num_axes pick the axes the scale spans") {
  Blob x({2, 2, 2});
  fill_counting(x, 1);
  // axis 0, num_axes 1: one factor per item.
  check_values(run("{type: Scale, scale_param: {axis: 0}}", x, nullptr, {{2, 3}}), {2, 4, 6, 8, 15, 18, 21, 24});
  // axis 1, num_axes -1: a factor per (channel, position).
  check_values(run("{type: Scale, scale_param: {num_axes: -1}}", x, nullptr, {{1, 2, 3, 4}}),
               {1, 4, 9, 16, 5, 12, 21, 32});
  // num_axes 0: one scalar for everything.
  auto t = test::make_layer("{type: Scale, scale_param: {num_axes: 0, filler: {type: constant, value: 3}}}");
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  CHECK(t.layer->blobs()[0]->num_axes() == 0);
  t.layer->forward(ctx, {&x}, {&y});
  check_values(y, {3, 6, 9, 12, 15, 18, 21, 24});
  // axis -1: the last axis.
  check_values(run("{type: Scale, scale_param: {axis: -1}}", x, nullptr, {{1, -1}}), {1, -2, 3, -4, 5, -6, 7, -8});
}

TEST_CASE("Scale with the scale as second bottom, its bias is a parameter of that shape") {
  Blob x({2, 2, 2}), s({2});
  fill_counting(x, 1);
  set_values(s, {2, 0});
  check_values(run("{type: Scale}", x, &s), {2, 4, 0, 0, 10, 12, 0, 0});
  auto t = test::make_layer("{type: Scale, scale_param: {bias_term: true, bias_filler: {type: constant, value: 1}}}");
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, {&x, &s}, {&y});
  REQUIRE(t.layer->blobs().size() == 1);  // the bias only
  CHECK(t.layer->blobs()[0]->shape() == std::vector<int>{2});
  t.layer->forward(ctx, {&x, &s}, {&y});
  check_values(y, {3, 5, 1, 1, 11, 13, 1, 1});
  // A scalar second bottom scales everything.
  Blob scalar(std::vector<int>{});
  scalar.mutable_cpu_data()[0] = -1;
  check_values(run("{type: Scale, scale_param: {axis: 2}}", x, &scalar), {-1, -2, -3, -4, -5, -6, -7, -8});
}

TEST_CASE("Scale backward: scale gradient sums dy x, bias gradient sums dy, both accumulate") {
  auto t = test::make_layer("{type: Scale, scale_param: {bias_term: true}}");
  Blob x({2, 2, 1}), y;
  set_values(x, {1, 2, 3, 4});  // item 0: c0 1, c1 2; item 1: c0 3, c1 4
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  set_values(*t.layer->blobs()[0], {10, 100});
  t.layer->forward(ctx, {&x}, {&y});
  set_values(y, {1, 1, 1, 1});
  std::copy(y.cpu_data(), y.cpu_data() + 4, y.mutable_cpu_diff());
  y.mutable_cpu_diff()[3] = 2;
  for (auto& b : t.layer->blobs()) b->set_diff(0.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  check_values(x, {1, 2, 3, 4});
  const float* ds = t.layer->blobs()[0]->cpu_diff();
  const float* db = t.layer->blobs()[1]->cpu_diff();
  CHECK(ds[0] == 1 + 3);
  CHECK(ds[1] == 2 + 2 * 4);
  CHECK(db[0] == 2);
  CHECK(db[1] == 3);
  const std::vector<float> want_dx = {10, 100, 10, 200};
  for (int i = 0; i < 4; ++i) CHECK(x.cpu_diff()[i] == want_dx[static_cast<size_t>(i)]);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  CHECK(t.layer->blobs()[0]->cpu_diff()[1] == 2 * (2 + 2 * 4));
}

TEST_CASE("Scale in place matches out of place") {
  test::check_in_place_matches_out_of_place(
      "{type: Scale, scale_param: {bias_term: true, filler: {type: constant, value: 1.5}, "
      "bias_filler: {type: constant, value: -0.5}}}",
      {{2, 3, 2}});
}

TEST_CASE("Scale rejects operands that do not line up") {
  Context ctx(1);
  Blob x({2, 3, 4}), y, wrong({4});
  auto t = test::make_layer("{type: Scale}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x, &wrong}, {&y}), doctest::Contains("does not match bottom 0"),
                       ConfigError);
  auto t2 = test::make_layer("{type: Scale, scale_param: {axis: 2, num_axes: 2}}");
  CHECK_THROWS_WITH_AS(t2.layer->setup(ctx, {&x}, {&y}), doctest::Contains("extends past the last axis"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Scale, scale_param: {num_axes: -2}}"),
                       doctest::Contains("num_axes must be non-negative"), ConfigError);
}

TEST_CASE("Scale gradient") {
  Rng rng(21);
  {
    auto t = test::make_layer(
        "{type: Scale, scale_param: {bias_term: true, filler: {type: gaussian}, bias_filler: {type: gaussian}}}");
    Blob x({2, 3, 2, 2}), y;
    test::fill_gaussian(x, rng);
    test::check_gradients(*t.layer, {&x}, {&y});
  }
  {
    auto t = test::make_layer("{type: Scale, scale_param: {axis: 0, num_axes: 2, bias_term: true}}");
    Blob x({2, 3, 4}), s({2, 3}), y;
    test::fill_gaussian(x, rng);
    test::fill_gaussian(s, rng);
    test::check_gradients(*t.layer, {&x, &s}, {&y});
  }
}

TEST_CASE("Bias forward: a learnt bias (default 0) or a second bottom, along axis and num_axes") {
  Blob x({2, 2, 2});
  fill_counting(x, 1);
  check_values(run("{type: Bias}", x, nullptr), {1, 2, 3, 4, 5, 6, 7, 8});
  check_values(run("{type: Bias}", x, nullptr, {{10, -1}}), {11, 12, 2, 3, 15, 16, 6, 7});
  check_values(run("{type: Bias, bias_param: {axis: 0, num_axes: 2, filler: {type: constant, value: 0.5}}}", x,
                   nullptr),
               {1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f});
  Blob b({2, 2});
  set_values(b, {100, 200, 300, 400});
  check_values(run("{type: Bias, bias_param: {axis: 1}}", x, &b), {101, 202, 303, 404, 105, 206, 307, 408});
}

TEST_CASE("Bias backward: the bias gradient sums dy over the other axes") {
  auto t = test::make_layer("{type: Bias}");
  Blob x({2, 2, 1}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  set_values(y, {1, 2, 3, 4});
  std::copy(y.cpu_data(), y.cpu_data() + 4, y.mutable_cpu_diff());
  t.layer->blobs()[0]->set_diff(1.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  CHECK(t.layer->blobs()[0]->cpu_diff()[0] == 1 + 1 + 3);  // accumulated onto 1
  CHECK(t.layer->blobs()[0]->cpu_diff()[1] == 1 + 2 + 4);
  for (int i = 0; i < 4; ++i) CHECK(x.cpu_diff()[i] == static_cast<float>(i + 1));
}

TEST_CASE("Bias in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: Bias, bias_param: {filler: {type: constant, value: 2}}}",
                                            {{2, 3, 2}});
}

TEST_CASE("Bias gradient") {
  Rng rng(22);
  {
    auto t = test::make_layer("{type: Bias, bias_param: {num_axes: -1, filler: {type: gaussian}}}");
    Blob x({2, 3, 2}), y;
    test::fill_gaussian(x, rng);
    test::check_gradients(*t.layer, {&x}, {&y});
  }
  {
    auto t = test::make_layer("{type: Bias, bias_param: {axis: 2}}");
    Blob x({2, 2, 3, 2}), b({3, 2}), y;
    test::fill_gaussian(x, rng);
    test::fill_gaussian(b, rng);
    test::check_gradients(*t.layer, {&x, &b}, {&y});
  }
}
