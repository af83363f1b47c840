#include <vector>

#include "conv_test_util.hpp"
#include "engine/error.hpp"

using namespace crema;

using test::check_values;
using test::DirectConv;
using test::run_forward;
using test::set_values;

namespace {

// 1x1x3x3 image holding 1..9.
Blob image_1_to_9() {
  Blob x({1, 1, 3, 3});
  set_values(x, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  return x;
}

// Convolution by its definition, one output at a time (independent of im2col):
// y[n,o,oh,ow] = b[o] + sum_{c,i,j} w[o,c,i,j] x[n, g*C/G + c, oh*s - p + i*d, ow*s - p + j*d].
std::vector<float> direct_conv(const Blob& x, const Blob& w, const Blob* b, const DirectConv& p) {
  const int N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3), Co = w.shape(0);
  const int OH = (H + 2 * p.pad_h - (p.dil_h * (p.kh - 1) + 1)) / p.stride_h + 1;
  const int OW = (W + 2 * p.pad_w - (p.dil_w * (p.kw - 1) + 1)) / p.stride_w + 1;
  const int cg = C / p.group, og = Co / p.group;
  std::vector<float> y(static_cast<size_t>(N * Co * OH * OW));
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < Co; ++o)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double s = b ? b->cpu_data()[o] : 0.f;
          for (int c = 0; c < cg; ++c)
            for (int i = 0; i < p.kh; ++i)
              for (int j = 0; j < p.kw; ++j) {
                const int ih = oh * p.stride_h - p.pad_h + i * p.dil_h, iw = ow * p.stride_w - p.pad_w + j * p.dil_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int ci = o / og * cg + c;
                s += static_cast<double>(w.cpu_data()[((o * cg + c) * p.kh + i) * p.kw + j]) *
                     x.cpu_data()[((n * C + ci) * H + ih) * W + iw];
              }
          y[static_cast<size_t>(((n * Co + o) * OH + oh) * OW + ow)] = static_cast<float>(s);
        }
  return y;
}

}  // namespace

TEST_CASE("Convolution forward: 2x2 kernel with bias on a 3x3 image") {
  Blob x = image_1_to_9(), y;
  run_forward("{type: Convolution, convolution_param: {num_output: 1, kernel_size: 2}}", x, y,
              {{{1, 1, 2, 2}, {1, 2, 3, 4}}, {{1}, {0.5f}}});
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
  // 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on, plus the bias.
  check_values(y, {37.5f, 47.5f, 67.5f, 77.5f});
}

TEST_CASE("Convolution forward: pad 1 and stride 2 read zeros outside the image") {
  Blob x = image_1_to_9(), y;
  run_forward(
      "{type: Convolution, convolution_param: {num_output: 1, kernel_size: 3, pad: 1, stride: 2, "
      "bias_term: false}}",
      x, y, {{{1, 1, 3, 3}, std::vector<float>(9, 1.f)}});
  // (3 + 2 - 3) / 2 + 1 = 2; each output sums the 2x2 corner block the window covers.
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
  check_values(y, {12, 16, 24, 28});
}

TEST_CASE("Convolution forward: dilation 2 spreads the kernel") {
  Blob x = image_1_to_9(), y;
  run_forward("{type: Convolution, convolution_param: {num_output: 1, kernel_size: 2, dilation: 2, bias_term: false}}",
              x, y, {{{1, 1, 2, 2}, {1, 2, 3, 4}}});
  // The 2x2 kernel covers 3x3 and reads the corners: 1*1 + 3*2 + 7*3 + 9*4.
  CHECK(y.shape() == std::vector<int>{1, 1, 1, 1});
  check_values(y, {64});
}

TEST_CASE("Convolution forward: like Caffe, a kernel overhanging by less than a stride gives one output") {
  // (2 - 3) / 2 + 1 truncates to 1; the overhang reads zeros.
  Blob x({1, 1, 2, 2}), y;
  set_values(x, {1, 2, 3, 4});
  run_forward("{type: Convolution, convolution_param: {num_output: 1, kernel_size: 3, stride: 2, bias_term: false}}", x,
              y, {{{1, 1, 3, 3}, std::vector<float>(9, 1.f)}});
  CHECK(y.shape() == std::vector<int>{1, 1, 1, 1});
  check_values(y, {10});
}

TEST_CASE("Convolution forward: a kernel and stride per axis") {
  const std::vector<float> want = {3, 5, 15, 17};  // pairs of neighbours in rows 0 and 2
  for (const char* cfg : {"{type: Convolution, convolution_param: {num_output: 1, kernel_h: 1, kernel_w: 2, "
                          "stride_h: 2, stride_w: 1, bias_term: false}}",
                          "{type: Convolution, convolution_param: {num_output: 1, kernel_size: [1, 2], "
                          "stride: [2, 1], bias_term: false}}"}) {
    CAPTURE(cfg);
    Blob x = image_1_to_9(), y;
    run_forward(cfg, x, y, {{{1, 1, 1, 2}, {1, 1}}});
    CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
    check_values(y, want);
  }
}

TEST_CASE("Convolution forward: with group 2 each output sees only its own input channels") {
  Blob x({1, 2, 1, 2}), y;
  set_values(x, {1, 2, 10, 20});
  // Weight (2, 1, 1, 1): output 0 = 2 * channel 0, output 1 = 3 * channel 1.
  run_forward("{type: Convolution, convolution_param: {num_output: 2, kernel_size: 1, group: 2}}", x, y,
              {{{2, 1, 1, 1}, {2, 3}}, {{2}, {0, 1}}});
  check_values(y, {2, 4, 31, 61});
}

TEST_CASE("Convolution matches a direct convolution") {
  test::check_against_reference(
      "Convolution",
      {
          {"num_output: 4, kernel_size: 3", {2, 3, 6, 5}, {3, 3, 0, 0, 1, 1, 1, 1, 1}},
          {"num_output: 4, kernel_size: 3, pad: 1, stride: 2", {2, 3, 7, 6}, {3, 3, 1, 1, 2, 2, 1, 1, 1}},
          {"num_output: 6, kernel_h: 2, kernel_w: 3, pad_h: 1, pad_w: 0, stride_h: 1, stride_w: 2, group: 3",
           {2, 6, 5, 7},
           {2, 3, 1, 0, 1, 2, 1, 1, 3}},
          {"num_output: 2, kernel_size: 3, dilation: [2, 1], pad: 2", {1, 2, 6, 6}, {3, 3, 2, 2, 1, 1, 2, 1, 1}},
          {"num_output: 4, kernel_size: 1, group: 2", {2, 4, 3, 3}, {1, 1, 0, 0, 1, 1, 1, 1, 2}},  // the 1x1 path
      },
      direct_conv);
}

TEST_CASE("Convolution axis: every axis before it counts images") {
  auto t = test::make_layer(
      "{type: Convolution, convolution_param: {num_output: 2, kernel_size: 2, axis: 2, "
      "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}");
  Blob x({2, 3, 2, 4, 4}), y;  // six images of (2, 4, 4)
  Rng rng(7);
  test::fill_gaussian(x, rng);
  Context ctx(2);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(y.shape() == std::vector<int>{2, 3, 2, 3, 3});
  Blob images({6, 2, 4, 4});
  images.copy_from(x);
  check_values(y, direct_conv(images, *t.layer->blobs()[0], t.layer->blobs()[1].get(), {2, 2, 0, 0, 1, 1, 1, 1, 1}));
}

TEST_CASE("Convolution parameter blobs: Caffe's shapes, fillers, bias_term false") {
  Blob x({2, 6, 5, 5}), y;
  Context ctx(3);
  {
    auto t = test::make_layer(
        "{type: Convolution, convolution_param: {num_output: 4, kernel_h: 3, kernel_w: 2, "
        "group: 2, weight_filler: {type: constant, value: 0.5}, "
        "bias_filler: {type: constant, value: -1}}}");
    t.layer->setup(ctx, {&x}, {&y});
    REQUIRE(t.layer->blobs().size() == 2);
    const Blob& w = *t.layer->blobs()[0];
    CHECK(w.shape() == std::vector<int>{4, 3, 3, 2});  // (out, in/group, kh, kw)
    CHECK(t.layer->blobs()[1]->shape() == std::vector<int>{4});
    for (int i = 0; i < w.count(); ++i) CHECK(w.cpu_data()[i] == 0.5f);
    CHECK(t.layer->blobs()[1]->cpu_data()[3] == -1.f);
    CHECK(y.shape() == std::vector<int>{2, 4, 3, 4});
  }
  {
    auto t = test::make_layer(
        "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 1, "
        "bias_term: false}}");
    t.layer->setup(ctx, {&x}, {&y});
    CHECK(t.layer->blobs().size() == 1);
  }
}

TEST_CASE("Convolution with two bottoms uses the same weights for both") {
  auto t = test::make_layer(
      "{type: Convolution, convolution_param: {num_output: 2, kernel_size: 2, "
      "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}");
  Blob a({1, 2, 4, 4}), b({1, 2, 4, 4}), ya, yb;
  Rng rng(9);
  test::fill_gaussian(a, rng);
  b.copy_from(a);
  b.mutable_cpu_data()[0] += 1.f;  // differs only where the first pixel is read
  Context ctx(4);
  t.layer->setup(ctx, {&a, &b}, {&ya, &yb});
  t.layer->forward(ctx, {&a, &b}, {&ya, &yb});
  const float* w = t.layer->blobs()[0]->cpu_data();  // (2, 2, 2, 2)
  for (int i = 0; i < ya.count(); ++i) {
    const int o = i / 9, p = i % 9;
    const float want = ya.cpu_data()[i] + (p == 0 ? w[o * 8] : 0.f);
    CHECK(yb.cpu_data()[i] == doctest::Approx(want));
  }
}

TEST_CASE("Convolution backward accumulates parameter gradients and honours param_propagate_down") {
  auto t = test::make_layer(
      "{type: Convolution, convolution_param: {num_output: 2, kernel_size: 2, "
      "weight_filler: {type: gaussian}}}");
  Blob x({2, 3, 4, 4}), y;
  Rng rng(11);
  test::fill_gaussian(x, rng);
  Context ctx(5);
  Layer& layer = *t.layer;
  test::forward_with_random_top_diff(layer, ctx, x, y, rng);

  layer.backward(ctx, {&y}, {false}, {&x});
  const std::vector<float> once_w(layer.blobs()[0]->cpu_diff(), layer.blobs()[0]->cpu_diff() + 24);
  const float once_b = layer.blobs()[1]->cpu_diff()[1];
  layer.backward(ctx, {&y}, {false}, {&x});
  for (int i = 0; i < 24; ++i)
    CHECK(layer.blobs()[0]->cpu_diff()[i] == doctest::Approx(2 * once_w[static_cast<size_t>(i)]));
  CHECK(layer.blobs()[1]->cpu_diff()[1] == doctest::Approx(2 * once_b));

  layer.set_param_propagate_down(0, false);
  layer.set_param_propagate_down(1, false);
  layer.backward(ctx, {&y}, {false}, {&x});
  for (int i = 0; i < 24; ++i)
    CHECK(layer.blobs()[0]->cpu_diff()[i] == doctest::Approx(2 * once_w[static_cast<size_t>(i)]));
  CHECK(layer.blobs()[1]->cpu_diff()[1] == doctest::Approx(2 * once_b));
}

TEST_CASE("Convolution rejects bad configurations with clear messages") {
  Context ctx(1);
  auto setup_error = [&](const std::string& params, std::vector<int> shape, const char* message) {
    CAPTURE(params);
    Blob x(shape), y;
    auto t = test::make_layer("{type: Convolution, convolution_param: {" + params + "}}");
    CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains(message), ConfigError);
  };
  setup_error("num_output: 2, kernel_size: 3", {1, 1, 4, 4, 4}, "two spatial axes only");
  setup_error("num_output: 2, kernel_size: [1, 2, 3]", {1, 1, 4, 4}, "one per spatial axis");
  setup_error("num_output: 2, kernel_size: 2, group: 2", {1, 3, 4, 4}, "do not divide into group");
  setup_error("num_output: 3, kernel_size: 2, group: 2", {1, 4, 4, 4}, "num_output 3 does not divide");
  setup_error(
      "num_output: 1, kernel_size: 5", {1, 1, 4, 4},
      "the kernel (5x5) does not fit the padded input (4x4); use a smaller kernel, more pad, or a larger input");
  setup_error("num_output: 1, kernel_size: 3, dilation: 3, pad: 1", {1, 1, 4, 4},
              "the kernel (3x3, spanning 7x7 with dilation 3x3) does not fit the padded input (6x6); use a smaller "
              "kernel or dilation");
  // Typos too large for 32 bits are said as they are, not wrapped around into a bogus shape.
  setup_error("num_output: 1, kernel_size: 3, dilation: 2000000000", {1, 1, 4, 4},
              "the padded input (4x4) or the kernel's extent with dilation (4000000001x4000000001) is beyond 32-bit "
              "sizes; check pad and dilation");
  setup_error("num_output: 1, kernel_size: 1, pad: 1500000000, stride: 1500000000", {1, 1, 4, 4},
              "the padded input (3000000004x3000000004)");

  auto parse_error = [&](const std::string& params, const char* message) {
    CAPTURE(params);
    CHECK_THROWS_WITH_AS(test::make_layer("{type: Convolution, convolution_param: {" + params + "}}"),
                         doctest::Contains(message), ConfigError);
  };
  parse_error("kernel_size: 3", "num_output");
  parse_error("num_output: 2", "kernel_size");
  parse_error("num_output: 2, kernel_size: 3, kernel_h: 3, kernel_w: 3", "not both");
  parse_error("num_output: 2, kernel_h: 3", "go together");
  parse_error("num_output: 2, kernel_size: 3, stride: 0", "stride must be positive");
  parse_error("num_output: 2, kernel_h: 5, kernel_w: 0", "kernel_w: kernel_w must be positive, got 0");
  parse_error("num_output: 2, kernel_size: 3, stride_h: -1, stride_w: 1", "stride_h: stride_h must be positive");
  parse_error("num_output: 2, kernel_size: 3, padd: 1", "did you mean 'pad'");
}

TEST_CASE("Convolution gradient") {
  test::check_conv_gradients(
      "Convolution",
      {
          {"num_output: 3, kernel_size: 3, stride: 2, pad: 1", {2, 3, 6, 5}, 2},
          {"num_output: 4, kernel_h: 2, kernel_w: 3, stride_h: 1, stride_w: 2, group: 2", {2, 4, 5, 6}, 1},
          {"num_output: 2, kernel_size: 2, dilation: 2, pad: 1, bias_term: false", {2, 2, 5, 5}, 1},
          {"num_output: 3, kernel_size: 1", {2, 4, 3, 3}, 1},  // the 1x1 path (no im2col)
      });
}
