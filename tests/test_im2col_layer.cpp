#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::fill_counting;

TEST_CASE("Im2col forward: every 2x2 window of a 3x3 image becomes a column") {
  auto t = test::make_layer("{type: Im2col, convolution_param: {kernel_size: 2}}");
  Blob x({1, 1, 3, 3}), y;
  fill_counting(x, 1);  // 1 2 3 / 4 5 6 / 7 8 9
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{1, 4, 2, 2});
  // Channel k = i * 2 + j holds kernel offset (i, j) of the four windows.
  check_values(y, {1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
}

TEST_CASE("Im2col matches the definition with padding, stride, dilation and channels") {
  struct Case {
    const char* params;
    int kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w;
  };
  for (const Case& c : {Case{"kernel_size: 3, pad: 1, stride: 2", 3, 3, 1, 1, 2, 2, 1, 1},
                        Case{"kernel_h: 2, kernel_w: 3, pad_h: 1, pad_w: 0, stride_h: 1, stride_w: 2", 2, 3, 1, 0, 1,
                             2, 1, 1},
                        Case{"kernel_size: 2, dilation: [2, 1], num_output: 7", 2, 2, 0, 0, 1, 1, 2, 1}}) {
    const std::string params = c.params;
    CAPTURE(params);
    auto t = test::make_layer("{type: Im2col, convolution_param: {" + params + "}}");
    const int N = 2, C = 3, H = 5, W = 6;
    Blob x({N, C, H, W}), y;
    fill_counting(x, 0);
    Context ctx(1);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    const int OH = (H + 2 * c.pad_h - (c.dil_h * (c.kh - 1) + 1)) / c.stride_h + 1;
    const int OW = (W + 2 * c.pad_w - (c.dil_w * (c.kw - 1) + 1)) / c.stride_w + 1;
    REQUIRE(y.shape() == std::vector<int>{N, C * c.kh * c.kw, OH, OW});
    for (int n = 0; n < N; ++n)
      for (int ch = 0; ch < C; ++ch)
        for (int i = 0; i < c.kh; ++i)
          for (int j = 0; j < c.kw; ++j)
            for (int oh = 0; oh < OH; ++oh)
              for (int ow = 0; ow < OW; ++ow) {
                const int h = oh * c.stride_h - c.pad_h + i * c.dil_h, w = ow * c.stride_w - c.pad_w + j * c.dil_w;
                const bool inside = h >= 0 && h < H && w >= 0 && w < W;
                const float want = inside ? static_cast<float>(((n * C + ch) * H + h) * W + w) : 0.f;
                const int row = (ch * c.kh + i) * c.kw + j;
                CHECK(y.cpu_data()[((n * C * c.kh * c.kw + row) * OH + oh) * OW + ow] == want);
              }
  }
}

TEST_CASE("Im2col backward sums the gradients of overlapping windows") {
  auto t = test::make_layer("{type: Im2col, convolution_param: {kernel_size: 2}}");
  Blob x({1, 1, 3, 3}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  y.set_diff(1.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  // Each pixel's gradient counts the windows it lies in.
  const std::vector<float> want = {1, 2, 1, 2, 4, 2, 1, 2, 1};
  for (int i = 0; i < 9; ++i) CHECK(x.cpu_diff()[i] == want[static_cast<size_t>(i)]);
}

TEST_CASE("Im2col errors") {
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Im2col, convolution_param: {stride: 2}}"),
                       doctest::Contains("kernel_size"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Im2col}"), doctest::Contains("kernel_size"), ConfigError);
  Context ctx(1);
  Blob x({1, 1, 2, 2}), y;
  auto t = test::make_layer("{type: Im2col, convolution_param: {kernel_size: 3}}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("does not fit"), ConfigError);
  Blob x5({1, 1, 2, 2, 2}), y5;
  auto t5 = test::make_layer("{type: Im2col, convolution_param: {kernel_size: 1}}");
  CHECK_THROWS_WITH_AS(t5.layer->setup(ctx, {&x5}, {&y5}), doctest::Contains("two spatial axes"), ConfigError);
}

TEST_CASE("Im2col gradient") {
  test::check_gradients("{type: Im2col, convolution_param: {kernel_size: 3, pad: 1, stride: 2}}", {{2, 2, 5, 4}});
}
