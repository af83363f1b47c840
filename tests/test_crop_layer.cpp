#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::fill_counting;

namespace {

// Crops a 1x1x4x5 image holding 0..19 to the 2x3 of a reference bottom.
std::vector<float> crop_4x5(const std::string& crop_param) {
  auto t = test::make_layer("{type: Crop" + crop_param + "}");
  Blob x({1, 1, 4, 5}), like({1, 1, 2, 3}), y;
  fill_counting(x, 0);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &like}, {&y});
  t.layer->forward(ctx, {&x, &like}, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 3});
  return std::vector<float>(y.cpu_data(), y.cpu_data() + y.count());
}

}  // namespace

TEST_CASE("Crop forward: offsets none, one for all axes, one per axis") {
  // Rows of the image: 0..4, 5..9, 10..14, 15..19.
  CHECK(crop_4x5("") == std::vector<float>{0, 1, 2, 5, 6, 7});
  CHECK(crop_4x5(", crop_param: {offset: 1}") == std::vector<float>{6, 7, 8, 11, 12, 13});
  CHECK(crop_4x5(", crop_param: {offset: [2, 2]}") == std::vector<float>{12, 13, 14, 17, 18, 19});
  CHECK(crop_4x5(", crop_param: {axis: -2, offset: [1, 0]}") == std::vector<float>{5, 6, 7, 10, 11, 12});
}

TEST_CASE("Crop axis 1 crops channels too, axes before it keep bottom 0's size") {
  auto t = test::make_layer("{type: Crop, crop_param: {axis: 1, offset: [1, 0, 2]}}");
  Blob x({2, 3, 3, 4}), like({5, 2, 2, 2}), y;
  fill_counting(x, 0);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &like}, {&y});
  t.layer->forward(ctx, {&x, &like}, {&y});
  REQUIRE(y.shape() == std::vector<int>{2, 2, 2, 2});
  // y[n, c, h, w] = x[n, c + 1, h, w + 2] = ((n * 3 + c + 1) * 3 + h) * 4 + w + 2.
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 2; ++h)
        for (int w = 0; w < 2; ++w) {
          const int from = ((n * 3 + c + 1) * 3 + h) * 4 + w + 2;
          CHECK(y.cpu_data()[((n * 2 + c) * 2 + h) * 2 + w] == static_cast<float>(from));
        }
}

TEST_CASE("Crop backward puts the gradient into the window and zeros elsewhere") {
  auto t = test::make_layer("{type: Crop, crop_param: {offset: [1, 2]}}");
  Blob x({1, 1, 3, 4}), like({1, 1, 2, 2}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x, &like}, {&y});
  t.layer->forward(ctx, {&x, &like}, {&y});
  test::set_values(y, {1, 2, 3, 4});
  std::copy(y.cpu_data(), y.cpu_data() + 4, y.mutable_cpu_diff());
  x.set_diff(9.f);
  like.set_diff(7.f);
  t.layer->backward(ctx, {&y}, {true, false}, {&x, &like});
  const std::vector<float> want = {0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4};
  for (int i = 0; i < 12; ++i) CHECK(x.cpu_diff()[i] == want[static_cast<size_t>(i)]);
  CHECK(like.cpu_diff()[0] == 7.f);  // the reference bottom is left alone
  CHECK_FALSE(t.layer->allow_force_backward(1));
}

TEST_CASE("Crop rejects bad offsets and shapes with clear messages") {
  Context ctx(1);
  auto setup_error = [&](const std::string& param, std::vector<int> big, std::vector<int> small, const char* message) {
    CAPTURE(param);
    auto t = test::make_layer("{type: Crop, crop_param: {" + param + "}}");
    Blob x(big), like(small), y;
    CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x, &like}, {&y}), doctest::Contains(message), ConfigError);
  };
  setup_error("offset: [1, 1, 1]", {1, 1, 4, 4}, {1, 1, 2, 2}, "one per cropped axis (2)");
  setup_error("offset: 3", {1, 1, 4, 4}, {1, 1, 2, 2}, "cannot crop axis 2");
  setup_error("", {1, 1, 4, 4}, {1, 1, 5, 2}, "cannot crop axis 2");
  setup_error("", {1, 1, 4, 4}, {1, 2, 2}, "same number of axes");
  setup_error("axis: 4", {1, 1, 4, 4}, {1, 1, 2, 2}, "out of range");
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Crop, crop_param: {offset: -1}}"), doctest::Contains("negative"),
                       ConfigError);
}

TEST_CASE("Crop gradient") {
  auto t = test::make_layer("{type: Crop, crop_param: {axis: 1, offset: [1, 1, 0]}}");
  Blob x({2, 3, 4, 3}), like({2, 2, 2, 3}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  test::GradCheck opt;
  opt.bottoms = {0};
  test::check_gradients(*t.layer, {&x, &like}, {&y}, opt);
}
