#include <vector>

#include "conv_test_util.hpp"
#include "engine/error.hpp"

using namespace crema;
using test::check_values;
using test::DirectConv;
using test::run_forward;
using test::set_values;

namespace {

// Deconvolution by its definition, independent of im2col: every input pixel adds
// w[c, o, i, j] * x[n, c, ih, iw] to y[n, g Co/G + o, ih s - p + i d, iw s - p + j d],
// where g is the group of input channel c; outputs cropped away by the padding drop.
std::vector<float> direct_deconv(const Blob& x, const Blob& w, const Blob* b, const DirectConv& p) {
  const int N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int og = w.shape(1), Co = og * p.group, cg = C / p.group;
  const int OH = p.stride_h * (H - 1) + p.dil_h * (p.kh - 1) + 1 - 2 * p.pad_h;
  const int OW = p.stride_w * (W - 1) + p.dil_w * (p.kw - 1) + 1 - 2 * p.pad_w;
  std::vector<double> y(static_cast<size_t>(N * Co * OH * OW), 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < Co; ++o)
      for (int s = 0; s < OH * OW; ++s) y[static_cast<size_t>((n * Co + o) * OH * OW + s)] = b ? b->cpu_data()[o] : 0.f;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int ih = 0; ih < H; ++ih)
        for (int iw = 0; iw < W; ++iw)
          for (int o = 0; o < og; ++o)
            for (int i = 0; i < p.kh; ++i)
              for (int j = 0; j < p.kw; ++j) {
                const int oh = ih * p.stride_h - p.pad_h + i * p.dil_h, ow = iw * p.stride_w - p.pad_w + j * p.dil_w;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                const int out_channel = c / cg * og + o;
                y[static_cast<size_t>(((n * Co + out_channel) * OH + oh) * OW + ow)] +=
                    static_cast<double>(w.cpu_data()[((c * og + o) * p.kh + i) * p.kw + j]) *
                    x.cpu_data()[((n * C + c) * H + ih) * W + iw];
              }
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace

TEST_CASE("Deconvolution forward: stride 2 stamps the kernel once per pixel") {
  Blob x({1, 1, 2, 2}), y;
  set_values(x, {1, 2, 3, 4});
  run_forward("{type: Deconvolution, convolution_param: {num_output: 1, kernel_size: 2, stride: 2, bias_term: false}}",
              x, y, {{{1, 1, 2, 2}, {1, 10, 100, 1000}}});
  // 2 (2 - 1) + 2 = 4: four disjoint 2x2 stamps.
  CHECK(y.shape() == std::vector<int>{1, 1, 4, 4});
  check_values(y, {1, 10, 2, 20, 100, 1000, 200, 2000, 3, 30, 4, 40, 300, 3000, 400, 4000});
}

TEST_CASE("Deconvolution forward: stride 1 overlaps the stamps, pad crops the border, bias adds") {
  Blob x({1, 1, 2, 2}), y;
  set_values(x, {1, 2, 3, 4});
  run_forward("{type: Deconvolution, convolution_param: {num_output: 1, kernel_size: 2}}", x, y,
              {{{1, 1, 2, 2}, {1, 1, 1, 1}}, {{1}, {0.5f}}});
  // (2 - 1) + 2 = 3; the centre receives all four stamps.
  CHECK(y.shape() == std::vector<int>{1, 1, 3, 3});
  check_values(y, {1.5f, 3.5f, 2.5f, 4.5f, 10.5f, 6.5f, 3.5f, 7.5f, 4.5f});

  Blob x2({1, 1, 2, 2}), y2;
  set_values(x2, {1, 2, 3, 4});
  run_forward("{type: Deconvolution, convolution_param: {num_output: 1, kernel_size: 2, pad: 1, bias_term: false}}",
              x2, y2, {{{1, 1, 2, 2}, {1, 1, 1, 1}}});
  // pad 1 crops one pixel from every side of the 3x3 result.
  CHECK(y2.shape() == std::vector<int>{1, 1, 1, 1});
  check_values(y2, {10});
}

TEST_CASE("Deconvolution forward: two input channels sum into each output channel") {
  Blob x({1, 2, 1, 1}), y;
  set_values(x, {2, 3});
  // Weight (in 2, out 2, 1, 1): out 0 = 1*x0 + 3*x1, out 1 = 2*x0 + 4*x1.
  run_forward("{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 1, bias_term: false}}", x, y,
              {{{2, 2, 1, 1}, {1, 2, 3, 4}}});
  check_values(y, {11, 16});
}

TEST_CASE("Deconvolution matches a direct transposed convolution") {
  test::check_against_reference(
      "Deconvolution",
      {
          {"num_output: 3, kernel_size: 3", {2, 2, 3, 4}, {3, 3, 0, 0, 1, 1, 1, 1, 1}},
          {"num_output: 2, kernel_size: 4, stride: 2, pad: 1", {2, 3, 3, 3}, {4, 4, 1, 1, 2, 2, 1, 1, 1}},
          {"num_output: 6, kernel_h: 2, kernel_w: 3, pad_h: 1, pad_w: 0, stride_h: 2, stride_w: 1, group: 2",
           {1, 4, 3, 4},
           {2, 3, 1, 0, 2, 1, 1, 1, 2}},
          {"num_output: 2, kernel_size: 2, dilation: [2, 1]", {1, 2, 3, 3}, {2, 2, 0, 0, 1, 1, 2, 1, 1}},
          {"num_output: 4, kernel_size: 1, group: 2", {2, 4, 3, 2}, {1, 1, 0, 0, 1, 1, 1, 1, 2}},  // the 1x1 path
      },
      direct_deconv);
}

TEST_CASE("Deconvolution parameter blobs: Caffe's (in, out/group, kh, kw) weight and the bilinear filler") {
  Blob x({2, 4, 3, 3}), y;
  Context ctx(3);
  auto t = test::make_layer(
      "{type: Deconvolution, convolution_param: {num_output: 6, kernel_h: 3, kernel_w: 2, group: 2, "
      "bias_filler: {type: constant, value: 2}}}");
  t.layer->setup(ctx, {&x}, {&y});
  REQUIRE(t.layer->blobs().size() == 2);
  CHECK(t.layer->blobs()[0]->shape() == std::vector<int>{4, 3, 3, 2});
  CHECK(t.layer->blobs()[1]->shape() == std::vector<int>{6});
  CHECK(t.layer->blobs()[1]->cpu_data()[5] == 2.f);
  CHECK(y.shape() == std::vector<int>{2, 6, 5, 4});

  // FCN-style 2x upsampling: kernel 4, stride 2, pad 1, bilinear weights, one group
  // per channel. A constant image stays constant away from the border.
  auto up = test::make_layer(
      "{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 4, stride: 2, pad: 1, group: 2, "
      "bias_term: false, weight_filler: {type: bilinear}}}");
  Blob img({1, 2, 3, 3}), big;
  img.set_data(1.f);
  up.layer->setup(ctx, {&img}, {&big});
  up.layer->forward(ctx, {&img}, {&big});
  CHECK(big.shape() == std::vector<int>{1, 2, 6, 6});
  for (int c = 0; c < 2; ++c)
    for (int h = 1; h < 5; ++h)
      for (int w = 1; w < 5; ++w) CHECK(big.cpu_data()[(c * 6 + h) * 6 + w] == doctest::Approx(1.f));
}

TEST_CASE("Deconvolution rejects a padding that crops everything") {
  Blob x({1, 1, 2, 2}), y;
  Context ctx(1);
  auto t = test::make_layer("{type: Deconvolution, convolution_param: {num_output: 1, kernel_size: 1, pad: 1}}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("reduce pad"), ConfigError);
}

TEST_CASE("Deconvolution gradient") {
  test::check_conv_gradients("Deconvolution",
                             {
                                 {"num_output: 3, kernel_size: 3, stride: 2, pad: 1", {2, 2, 3, 3}, 2},
                                 {"num_output: 4, kernel_h: 2, kernel_w: 3, stride_h: 1, stride_w: 2, group: 2",
                                  {2, 4, 3, 3},
                                  1},
                                 {"num_output: 2, kernel_size: 2, dilation: 2, bias_term: false", {1, 2, 3, 3}, 1},
                                 {"num_output: 3, kernel_size: 1", {2, 4, 3, 3}, 1},  // the 1x1 path (no im2col)
                             });
}
