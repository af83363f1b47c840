#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

TEST_CASE("PReLU forward: one slope per channel, Caffe's default 0.25") {
  auto t = test::make_layer("{type: PReLU}");
  Blob x({1, 2, 1, 2}), y;
  set_values(x, {-4, 2, -8, 3});
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  REQUIRE(t.layer->blobs().size() == 1);
  CHECK(t.layer->blobs()[0]->shape() == std::vector<int>{2});
  CHECK(t.layer->blobs()[0]->cpu_data()[1] == 0.25f);
  set_values(*t.layer->blobs()[0], {0.5f, 0.1f});
  t.layer->forward(ctx, {&x}, {&y});
  check_values(y, {-2, 2, -0.8f, 3});
}

TEST_CASE("PReLU channel_shared: one scalar slope (Caffe's 0-axis blob) and a filler") {
  auto t = test::make_layer("{type: PReLU, prelu_param: {channel_shared: true, filler: {type: constant, value: 0.5}}}");
  Blob x({2, 3, 2}), y;
  test::fill_counting(x, -6);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  CHECK(t.layer->blobs()[0]->num_axes() == 0);
  CHECK(t.layer->blobs()[0]->count() == 1);
  t.layer->forward(ctx, {&x}, {&y});
  for (int i = 0; i < x.count(); ++i) {
    const float v = static_cast<float>(i - 6);
    CHECK(y.cpu_data()[i] == (v > 0 ? v : 0.5f * v));
  }
}

TEST_CASE("PReLU backward: slope gradients sum dy x over the negative inputs") {
  auto t = test::make_layer("{type: PReLU}");
  Blob x({2, 2, 1}), y;  // (N, C, 1)
  set_values(x, {-1, 2, -3, -4});  // item 0: c0 -1, c1 2; item 1: c0 -3, c1 -4
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const std::vector<float> dy = {1, 10, 100, 1000};
  std::copy(dy.begin(), dy.end(), y.mutable_cpu_diff());
  t.layer->blobs()[0]->set_diff(0.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  const float* da = t.layer->blobs()[0]->cpu_diff();
  CHECK(da[0] == doctest::Approx(1 * -1 + 100 * -3));
  CHECK(da[1] == doctest::Approx(1000 * -4));
  const std::vector<float> want_dx = {0.25f, 10, 25, 250};
  for (int i = 0; i < 4; ++i) CHECK(x.cpu_diff()[i] == doctest::Approx(want_dx[static_cast<size_t>(i)]));
}

TEST_CASE("PReLU in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: PReLU}", {{2, 3, 2, 2}});
}

TEST_CASE("PReLU rejects a 1-D bottom") {
  auto t = test::make_layer("{type: PReLU}");
  Blob x({4}), y;
  Context ctx(1);
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("at least 2 axes"), ConfigError);
}

TEST_CASE("PReLU gradient") {
  test::GradCheck opt;
  opt.kink_range = 0.02f;
  for (const char* yaml : {"{type: PReLU, prelu_param: {filler: {type: uniform, min: 0.1, max: 0.9}}}",
                           "{type: PReLU, prelu_param: {channel_shared: true}}"}) {
    CAPTURE(yaml);
    test::check_gradients(yaml, {{2, 3, 3, 2}}, opt);
  }
}
