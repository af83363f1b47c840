#include <cmath>
#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

namespace {

Blob forward(const std::string& yaml, Blob& x) {
  auto t = test::make_layer(yaml);
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  return y;
}

}  // namespace

TEST_CASE("MVN forward: each channel of each image to mean 0 and deviation 1") {
  Blob x({1, 2, 4});
  set_values(x, {1, 3, 5, 7, 10, 10, 10, 14});
  // Channel 0: mean 4, deviation sqrt(5). Channel 1: mean 11, deviation sqrt(3).
  const float s0 = std::sqrt(5.f), s1 = std::sqrt(3.f);
  check_values(forward("{type: MVN}", x), {-3 / s0, -1 / s0, 1 / s0, 3 / s0, -1 / s1, -1 / s1, -1 / s1, 3 / s1});
  check_values(forward("{type: MVN, mvn_param: {normalize_variance: false}}", x), {-3, -1, 1, 3, -1, -1, -1, 3});
}

TEST_CASE("MVN across_channels normalises each whole image, eps adds to the deviation") {
  Blob x({2, 2, 1});
  set_values(x, {1, 3, 10, 20});  // image 0: mean 2, deviation 1; image 1: mean 15, deviation 5
  check_values(forward("{type: MVN, mvn_param: {across_channels: true}}", x), {-1, 1, -1, 1});
  check_values(forward("{type: MVN, mvn_param: {across_channels: true, eps: 1}}", x), {-0.5f, 0.5f, -5 / 6.f, 5 / 6.f});
  // Per channel, each group has one value: zero mean, zero deviation, so y = 0 / eps.
  check_values(forward("{type: MVN}", x), {0, 0, 0, 0});
}

TEST_CASE("MVN backward without the variance step subtracts the mean gradient") {
  auto t = test::make_layer("{type: MVN, mvn_param: {normalize_variance: false}}");
  Blob x({1, 1, 4}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  set_values(y, {1, 2, 3, 6});
  std::copy(y.cpu_data(), y.cpu_data() + 4, y.mutable_cpu_diff());
  t.layer->backward(ctx, {&y}, {true}, {&x});
  const std::vector<float> want = {-2, -1, 0, 3};
  for (int i = 0; i < 4; ++i) CHECK(x.cpu_diff()[i] == doctest::Approx(want[static_cast<size_t>(i)]));
}

TEST_CASE("MVN in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: MVN}", {{2, 3, 4}}, test::Compare::approx);
  test::check_in_place_matches_out_of_place("{type: MVN, mvn_param: {across_channels: true}}", {{2, 3, 4}},
                                            test::Compare::approx);
}

TEST_CASE("MVN gradient") {
  test::GradCheck opt;
  opt.step = 1e-3f;
  for (const char* yaml : {"{type: MVN}", "{type: MVN, mvn_param: {across_channels: true}}",
                           "{type: MVN, mvn_param: {normalize_variance: false}}",
                           "{type: MVN, mvn_param: {across_channels: true, normalize_variance: false}}"}) {
    CAPTURE(yaml);
    test::check_gradients(yaml, {{2, 3, 2, 3}}, opt);
  }
}
