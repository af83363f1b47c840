#include <numeric>

#include "layer_test_util.hpp"

using namespace crema;

namespace {

std::vector<float> counting(int n, float first = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Sets up Slice `yaml` on a bottom of `shape` holding 0, 1, 2, ... and runs forward
// into `num_tops` tops.
struct Sliced {
  test::LayerUnderTest t;
  Blob x;
  std::vector<Blob> tops;
  BlobVec top_vec() {
    BlobVec v;
    for (auto& b : tops) v.push_back(&b);
    return v;
  }
};

std::unique_ptr<Sliced> run_slice(const std::string& yaml, const std::vector<int>& shape, int num_tops) {
  auto s = std::make_unique<Sliced>();
  s->t = test::make_layer(yaml);
  s->x.reshape(shape);
  test::fill_counting(s->x, 0.f);
  s->tops.resize(static_cast<size_t>(num_tops));
  Context ctx(1);
  s->t.layer->setup(ctx, {&s->x}, s->top_vec());
  s->t.layer->forward(ctx, {&s->x}, s->top_vec());
  return s;
}

void check_setup_fails(const std::string& yaml, const std::vector<int>& shape, int num_tops) {
  CAPTURE(yaml);
  auto t = test::make_layer(yaml);
  Blob x(shape);
  std::vector<Blob> tops(static_cast<size_t>(num_tops));
  BlobVec v;
  for (auto& b : tops) v.push_back(&b);
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, v), ConfigError);
}

}  // namespace

TEST_CASE("Slice at slice_point along the default axis 1") {
  // x (2, 5, 2) = 0..19; cut the 5 channels at 1 and 3: sizes 1, 2, 2.
  auto s = run_slice("{type: Slice, slice_param: {slice_point: [1, 3]}}", {2, 5, 2}, 3);
  CHECK(s->tops[0].shape() == std::vector<int>{2, 1, 2});
  CHECK(s->tops[1].shape() == std::vector<int>{2, 2, 2});
  CHECK(s->tops[2].shape() == std::vector<int>{2, 2, 2});
  test::check_values(s->tops[0], {0, 1, 10, 11});
  test::check_values(s->tops[1], {2, 3, 4, 5, 12, 13, 14, 15});
  test::check_values(s->tops[2], {6, 7, 8, 9, 16, 17, 18, 19});
}

TEST_CASE("Slice without slice_point splits the axis evenly, negative axes count from the end") {
  // x (2, 3, 4) = 0..23 cut in two along the last axis.
  auto s = run_slice("{type: Slice, slice_param: {axis: -1}}", {2, 3, 4}, 2);
  CHECK(s->tops[0].shape() == std::vector<int>{2, 3, 2});
  test::check_values(s->tops[0], {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21});
  test::check_values(s->tops[1], {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23});
}

TEST_CASE("Slice legacy slice_dim selects the axis") {
  auto s = run_slice("{type: Slice, slice_param: {slice_dim: 0}}", {4, 3}, 2);
  test::check_values(s->tops[0], counting(6));
  test::check_values(s->tops[1], counting(6, 6));
  // One top: a copy of the whole bottom.
  auto one = run_slice("{type: Slice}", {2, 3}, 1);
  test::check_values(one->tops[0], counting(6));
}

TEST_CASE("Slice backward puts each top's gradient back in its place") {
  auto s = run_slice("{type: Slice, slice_param: {slice_point: [1, 3]}}", {2, 5, 2}, 3);
  // Each top's gradient is its own values, so the bottom's gradient must be 0..19.
  for (auto& t : s->tops)
    for (int i = 0; i < t.count(); ++i) t.mutable_cpu_diff()[i] = t.cpu_data()[i];
  Context ctx(1);
  s->t.layer->backward(ctx, s->top_vec(), {true}, {&s->x});
  for (int i = 0; i < s->x.count(); ++i) CHECK(s->x.cpu_diff()[i] == static_cast<float>(i));
}

TEST_CASE("Slice config errors") {
  CHECK_THROWS_AS(test::make_layer("{type: Slice, slice_param: {axis: 1, slice_dim: 1}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Slice, slice_param: {slice_dim: -1}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Slice, slice_param: {slice_point: [2, 2]}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Slice, slice_param: {slice_point: [0]}}"), ConfigError);
  // One slice point needs two tops; 5 does not split in 2; a point past the axis; slice_dim past the axes.
  check_setup_fails("{type: Slice, slice_param: {slice_point: [1]}}", {2, 5}, 3);
  check_setup_fails("{type: Slice}", {2, 5}, 2);
  check_setup_fails("{type: Slice, slice_param: {slice_point: [5]}}", {2, 5}, 2);
  check_setup_fails("{type: Slice, slice_param: {slice_dim: 2}}", {2, 4}, 2);
}

TEST_CASE("Slice gradient") {
  auto t = test::make_layer("{type: Slice, slice_param: {axis: 2, slice_point: [1, 4]}}");
  Blob x({2, 3, 6}), a, b, c;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  test::check_gradients(*t.layer, {&x}, {&a, &b, &c});
}
