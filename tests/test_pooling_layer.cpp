#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

using test::check_values;
using test::fill_counting;

namespace {

// Distinct values 0.05 apart in random order, so that no max is tied, even after a
// gradient-check step of 0.01.
void fill_distinct(Blob& b, uint64_t seed) {
  std::vector<int> order(static_cast<size_t>(b.count()));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(static_cast<uint32_t>(i))]);
  for (int i = 0; i < b.count(); ++i)
    b.mutable_cpu_data()[i] = 0.05f * static_cast<float>(order[static_cast<size_t>(i)] - b.count() / 2);
}

// Sets up and runs the layer on `x`.
void pool(const std::string& params, Blob& x, const BlobVec& top) {
  auto t = test::make_layer("{type: Pooling, pooling_param: {" + params + "}}");
  Context ctx(1);
  t.layer->setup(ctx, {&x}, top);
  t.layer->forward(ctx, {&x}, top);
}

}  // namespace

TEST_CASE("Pooling MAX 7x7, kernel 3, stride 2 gives 3x3 and the argmax mask") {
  Blob x({1, 1, 7, 7}), y, mask;
  fill_counting(x, 0);
  pool("pool: MAX, kernel_size: 3, stride: 2", x, {&y, &mask});
  CHECK(y.shape() == std::vector<int>{1, 1, 3, 3});
  // x holds its own index, so the max of each window is its bottom-right pixel.
  std::vector<float> want;
  for (int ph = 0; ph < 3; ++ph)
    for (int pw = 0; pw < 3; ++pw) want.push_back(static_cast<float>((2 * ph + 2) * 7 + 2 * pw + 2));
  check_values(y, want);
  check_values(mask, want);
}

TEST_CASE("Pooling MAX takes the first of equal values, as Caffe") {
  Blob x({1, 1, 2, 3}), y, mask;
  const float in[] = {1, 5, 5, 5, 2, 5};
  std::copy(in, in + 6, x.mutable_cpu_data());
  pool("pool: MAX, kernel_size: 2, stride: 1", x, {&y, &mask});
  check_values(y, {5, 5});
  check_values(mask, {1, 1});
}

TEST_CASE("Pooling output size: Caffe's ceil rule, and round_mode FLOOR") {
  Blob x({1, 1, 6, 6}), y;
  fill_counting(x, 0);
  // ceil((6 - 3) / 2) + 1 = 3: the last window is cut to rows/columns 4..5.
  pool("kernel_size: 3, stride: 2", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 3, 3});
  check_values(y, {14, 16, 17, 26, 28, 29, 32, 34, 35});
  pool("kernel_size: 3, stride: 2, round_mode: FLOOR", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
  check_values(y, {14, 16, 26, 28});
}

TEST_CASE("Pooling with pad drops a last window that would start in the padding") {
  // 3x3, kernel 2, stride 2, pad 1: ceil((3 + 2 - 2) / 2) + 1 = 3, but window 2
  // would start at 2 * 2 - 1 = 3 >= H, so Caffe keeps 2.
  Blob x({1, 1, 3, 3}), y;
  fill_counting(x, 1);
  pool("pool: MAX, kernel_size: 2, stride: 2, pad: 1", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
  check_values(y, {1, 3, 7, 9});
  // AVE divides by the whole window (4), padding included.
  pool("pool: AVE, kernel_size: 2, stride: 2, pad: 1", x, {&y});
  check_values(y, {0.25f, 1.25f, 2.75f, 7.f});
}

TEST_CASE("Pooling AVE divides by the window clipped to the padded image") {
  // 4x4 holding 1..16, kernel 3, stride 2, pad 1 → 3x3. Windows along each axis:
  // [-1, 2) size 3, [1, 4) size 3, [3, 6) clipped to H + pad = 5: size 2.
  Blob x({1, 1, 4, 4}), y;
  fill_counting(x, 1);
  pool("pool: AVE, kernel_size: 3, stride: 2, pad: 1", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 3, 3});
  check_values(y, {14.f / 9, 30.f / 9, 12.f / 6, 57.f / 9, 99.f / 9, 36.f / 6, 27.f / 6, 45.f / 6, 16.f / 4});
}

TEST_CASE("Pooling with a kernel larger than the image: one window with CEIL, an error with FLOOR") {
  // ceil((2 - 3) / 2) + 1 = 1, as Caffe computes it; floor gives 0.
  Blob x({1, 1, 2, 2}), y;
  fill_counting(x, 1);
  pool("pool: AVE, kernel_size: 3, stride: 2", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 1, 1});
  check_values(y, {2.5f});  // the window is clipped to the image: 10 / 4
  auto t = test::make_layer("{type: Pooling, pooling_param: {kernel_size: 3, stride: 2, round_mode: FLOOR}}");
  Context ctx(1);
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("does not fit"), ConfigError);
}

TEST_CASE("Pooling with a kernel and stride per axis") {
  Blob x({1, 1, 3, 3}), y;
  fill_counting(x, 1);
  pool("kernel_h: 2, kernel_w: 1, stride_h: 1, stride_w: 2", x, {&y});
  CHECK(y.shape() == std::vector<int>{1, 1, 2, 2});
  check_values(y, {4, 6, 7, 9});
}

TEST_CASE("Pooling global_pooling takes the whole image") {
  Blob x({2, 3, 2, 3}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);
  std::vector<float> mean, max;
  for (int p = 0; p < 6; ++p) {
    const float* plane = x.cpu_data() + p * 6;
    mean.push_back(std::accumulate(plane, plane + 6, 0.f) / 6);
    max.push_back(*std::max_element(plane, plane + 6));
  }
  pool("pool: AVE, global_pooling: true", x, {&y});
  CHECK(y.shape() == std::vector<int>{2, 3, 1, 1});
  check_values(y, mean);
  pool("pool: MAX, global_pooling: true", x, {&y});
  check_values(y, max);
}

TEST_CASE("Pooling keeps Caffe's size when a window starts past the image, and writes 0 there") {
  // No pad, stride > kernel: ceil((5 - 1) / 3) + 1 = 3, the third window starts at 6.
  Blob x({1, 1, 5, 5}), y;
  fill_counting(x, 1);
  {
    test::CaptureLog log;
    pool("pool: MAX, kernel_size: 1, stride: 3", x, {&y});
    // Said, since neither Caffe's MAX (-FLT_MAX) nor PyTorch (no such window) gives that 0.
    CHECK_MESSAGE(log.text().find("with kernel 1x1 and stride 3x3 over a 5x5 bottom, the last row and column of "
                                  "windows lies wholly past the image") != std::string::npos,
                  log.text());
  }
  {
    // Once per layer and geometry: the TEST nets' copies of the layer (another object), and
    // images of their own size (another bottom), say nothing more.
    test::CaptureLog log;
    pool("pool: MAX, kernel_size: 1, stride: 3", x, {&y});
    Blob other({1, 1, 8, 8}), other_top;  // windows at 0, 3, 6, 9: the last past the image too
    pool("pool: MAX, kernel_size: 1, stride: 3", other, {&other_top});
    CHECK(other_top.shape() == std::vector<int>{1, 1, 4, 4});
    CHECK_MESSAGE(log.text().find("lies wholly past the image") == std::string::npos, log.text());
  }
  CHECK(y.shape() == std::vector<int>{1, 1, 3, 3});
  check_values(y, {1, 4, 0, 16, 19, 0, 0, 0, 0});
  pool("pool: AVE, kernel_size: 1, stride: 3", x, {&y});
  check_values(y, {1, 4, 0, 16, 19, 0, 0, 0, 0});
}

TEST_CASE("Pooling rejects bad configurations with clear messages") {
  auto parse_error = [](const std::string& params, const char* message) {
    CAPTURE(params);
    CHECK_THROWS_WITH_AS(test::make_layer("{type: Pooling, pooling_param: {" + params + "}}"),
                         doctest::Contains(message), ConfigError);
  };
  parse_error("pool: STOCHASTIC, kernel_size: 2", "not supported yet");
  parse_error("pool: MAXIMUM, kernel_size: 2", "unknown value 'MAXIMUM'");
  parse_error("global_pooling: true, kernel_size: 2", "remove the kernel size");
  parse_error("global_pooling: true, stride: 2", "pad 0 and stride 1");
  parse_error("stride: 2", "kernel_size");
  parse_error("kernel_size: 2, kernel_h: 2, kernel_w: 2", "not both");
  parse_error("kernel_h: 2", "go together");
  parse_error("kernel_size: 2, pad: 2", "smaller than the kernel");
  parse_error("kernel_size: 2, round_mode: ROUND", "unknown value 'ROUND'");

  Context ctx(1);
  Blob x5({1, 1, 4, 4, 4}), x({1, 1, 4, 4}), y, mask;
  auto t = test::make_layer("{type: Pooling, pooling_param: {kernel_size: 2}}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x5}, {&y}), doctest::Contains("4-D bottom"), ConfigError);
  auto ave = test::make_layer("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 2}}");
  CHECK_THROWS_WITH_AS(ave.layer->setup(ctx, {&x}, {&y, &mask}), doctest::Contains("at most 1 top"), ConfigError);
  auto big = test::make_layer("{type: Pooling, pooling_param: {kernel_size: 6}}");
  CHECK_THROWS_WITH_AS(big.layer->setup(ctx, {&x}, {&y}), doctest::Contains("does not fit"), ConfigError);
}

TEST_CASE("Pooling gradient") {
  struct Case {
    const char* params;
    std::vector<int> shape;
    int tops;
  };
  const std::vector<Case> cases = {
      {"pool: MAX, kernel_size: 3, stride: 2", {2, 2, 7, 6}, 1},
      {"pool: MAX, kernel_size: 3, stride: 2", {2, 2, 7, 6}, 2},  // with the mask top
      {"pool: MAX, kernel_h: 3, kernel_w: 2, stride_h: 2, stride_w: 1, pad_h: 1, pad_w: 1", {1, 3, 5, 6}, 1},
      {"pool: MAX, global_pooling: true", {2, 3, 3, 4}, 1},
      {"pool: MAX, kernel_size: 1, stride: 3", {1, 2, 5, 5}, 1},  // with empty windows
      {"pool: AVE, kernel_size: 3, stride: 2, pad: 1", {2, 2, 6, 7}, 1},
      {"pool: AVE, kernel_size: 2, stride: 2, round_mode: FLOOR", {1, 2, 5, 5}, 1},
      {"pool: AVE, global_pooling: true", {2, 3, 3, 4}, 1},
  };
  for (const auto& c : cases) {
    const std::string params = c.params;
    CAPTURE(params);
    CAPTURE(c.tops);
    auto t = test::make_layer(std::string("{type: Pooling, pooling_param: {") + c.params + "}}");
    Blob x(c.shape), y, mask;
    fill_distinct(x, 17);
    BlobVec top = {&y};
    if (c.tops == 2) top.push_back(&mask);
    test::check_gradients(*t.layer, {&x}, top);
  }
}
