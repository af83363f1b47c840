#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::fill_counting;

namespace {

std::vector<int> spp(const std::string& spp_param, Blob& x, Blob& y) {
  auto t = test::make_layer("{type: SPP, spp_param: {" + spp_param + "}}");
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  return y.shape();
}

}  // namespace

TEST_CASE("SPP forward: a 4x4 image, levels of 1 and 2x2 bins, MAX and AVE") {
  Blob x({1, 1, 4, 4}), y;
  fill_counting(x, 1);  // rows 1..4, 5..8, 9..12, 13..16
  CHECK(spp("pyramid_height: 2", x, y) == std::vector<int>{1, 5});
  check_values(y, {16, 6, 8, 14, 16});  // the whole image, then the quadrants
  CHECK(spp("pyramid_height: 2, pool: AVE", x, y) == std::vector<int>{1, 5});
  check_values(y, {8.5f, 3.5f, 5.5f, 11.5f, 13.5f});
}

TEST_CASE("SPP forward: a 3x3 image pads its 2x2 level as Caffe does") {
  // Level 1: kernel ceil(3/2) = 2, stride 2, pad (2*2 - 3 + 1) / 2 = 1, so the bins are
  // row/column {0} and {1, 2}; AVE divides by the window including the padding (4).
  Blob x({1, 1, 3, 3}), y;
  fill_counting(x, 1);  // 1 2 3 / 4 5 6 / 7 8 9
  spp("pyramid_height: 2", x, y);
  check_values(y, {9, 1, 3, 7, 9});
  spp("pyramid_height: 2, pool: AVE", x, y);
  check_values(y, {5, 0.25f, 1.25f, 2.75f, 7});
}

TEST_CASE("SPP concatenates every channel's bins level by level") {
  Blob x({2, 2, 4, 4}), y;
  fill_counting(x, 0);
  CHECK(spp("pyramid_height: 3", x, y) == std::vector<int>{2, 2 * (1 + 4 + 16)});
  // Image 1, channel 1 holds 48..63. Level 0 of both channels comes first, then
  // level 1 (4 bins per channel), then level 2 (every pixel).
  const float* img1 = y.cpu_data() + 42;
  CHECK(img1[0] == 47);  // level 0, channel 0 (32..47)
  CHECK(img1[1] == 63);  // level 0, channel 1
  CHECK(img1[2 + 4] == 48 + 5);  // level 1, channel 1, top-left bin
  CHECK(img1[2 + 8 + 16 + 7] == 48 + 7);  // level 2, channel 1, pixel 7
}

TEST_CASE("SPP with pyramid_height 1 is one global pooling with a 4-D top, as in Caffe") {
  Blob x({2, 3, 5, 4}), y;
  fill_counting(x, 0);
  CHECK(spp("pyramid_height: 1", x, y) == std::vector<int>{2, 3, 1, 1});
  for (int p = 0; p < 6; ++p) CHECK(y.cpu_data()[p] == static_cast<float>(p * 20 + 19));
}

TEST_CASE("SPP rebuilds its poolings when the bottom size changes") {
  auto t = test::make_layer("{type: SPP, spp_param: {pyramid_height: 2}}");
  Blob x({1, 1, 4, 4}), y;
  fill_counting(x, 0);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  x.reshape({1, 1, 6, 6});
  fill_counting(x, 0);
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{1, 5});
  check_values(y, {35, 14, 17, 32, 35});  // quadrants of 3x3
}

TEST_CASE("SPP rejects sizes Caffe's pooling cannot pad, and bad parameters") {
  Blob x({1, 1, 5, 5}), y;
  Context ctx(1);
  // Level 2 (4 bins) of 5: kernel 2, pad (8 - 5 + 1) / 2 = 2, not below the kernel.
  auto t = test::make_layer("{type: SPP, spp_param: {pyramid_height: 3}}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("cannot pool a 5x5 bottom"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: SPP}"), doctest::Contains("pyramid_height"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: SPP, spp_param: {pyramid_height: 0}}"),
                       doctest::Contains("at least 1"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: SPP, spp_param: {pyramid_height: 2, pool: STOCHASTIC}}"),
                       doctest::Contains("not supported"), ConfigError);
  Blob flat({2, 8}), y2;
  auto t2 = test::make_layer("{type: SPP, spp_param: {pyramid_height: 2}}");
  CHECK_THROWS_WITH_AS(t2.layer->setup(ctx, {&flat}, {&y2}), doctest::Contains("4-D bottom"), ConfigError);
}

TEST_CASE("SPP gradient") {
  for (const char* param : {"pyramid_height: 3", "pyramid_height: 2, pool: AVE", "pyramid_height: 1"}) {
    CAPTURE(param);
    auto t = test::make_layer(std::string("{type: SPP, spp_param: {") + param + "}}");
    Blob x({2, 3, 6, 6}), y;  // 216 values: (7 i) mod 216 visits each once, 0.1 apart (no ties)
    for (int i = 0; i < x.count(); ++i) x.mutable_cpu_data()[i] = 0.1f * static_cast<float>((7 * i) % 216 - 108);
    test::check_gradients(*t.layer, {&x}, {&y});
  }
}
