#include <cmath>
#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;

using test::check_values;

namespace {

void lrn(const std::string& params, Blob& x, Blob& y) {
  auto t = test::make_layer("{type: LRN, lrn_param: {" + params + "}}");
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
}

// LRN by its formula, one output at a time: the window is channels [c - r, c + r]
// (across) or pixels [h - r, h + r] x [w - r, w + r] of channel c (within).
std::vector<float> direct_lrn(const Blob& x, int size, float alpha, float beta, float k, bool across) {
  const int N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3), r = (size - 1) / 2;
  auto at = [&](int n, int c, int h, int w) -> double {
    if (c < 0 || c >= C || h < 0 || h >= H || w < 0 || w >= W) return 0;
    return x.cpu_data()[((n * C + c) * H + h) * W + w];
  };
  std::vector<float> y;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          double sumsq = 0;
          if (across) {
            for (int c2 = c - r; c2 <= c + r; ++c2) sumsq += at(n, c2, h, w) * at(n, c2, h, w);
          } else {
            for (int h2 = h - r; h2 <= h + r; ++h2)
              for (int w2 = w - r; w2 <= w + r; ++w2) sumsq += at(n, c, h2, w2) * at(n, c, h2, w2);
          }
          const double scale = k + alpha / (across ? size : size * size) * sumsq;
          y.push_back(static_cast<float>(at(n, c, h, w) * std::pow(scale, -beta)));
        }
  return y;
}

}  // namespace

TEST_CASE("LRN ACROSS_CHANNELS forward by hand") {
  Blob x({1, 3, 1, 1}), y;
  x.mutable_cpu_data()[0] = 1;
  x.mutable_cpu_data()[1] = 2;
  x.mutable_cpu_data()[2] = 3;
  // local_size 3: scale = k + 3/3 * (sum of the neighbouring squares) = k + {5, 14, 13}.
  lrn("local_size: 3, alpha: 3, beta: 1", x, y);
  check_values(y, {1.f / 6, 2.f / 15, 3.f / 14});
  lrn("local_size: 3, alpha: 3, beta: 1, k: 2", x, y);
  check_values(y, {1.f / 7, 2.f / 16, 3.f / 15});
}

TEST_CASE("LRN WITHIN_CHANNEL forward by hand") {
  Blob x({1, 1, 3, 3}), y;
  for (int i = 0; i < 9; ++i) x.mutable_cpu_data()[i] = static_cast<float>(i + 1);
  // local_size 3, alpha 9: scale = 1 + 9/9 * (sum of the squares in the 3x3 window).
  lrn("local_size: 3, alpha: 9, beta: 1, norm_region: WITHIN_CHANNEL", x, y);
  CHECK(y.cpu_data()[0] == doctest::Approx(1.f / (1 + 1 + 4 + 16 + 25)));
  CHECK(y.cpu_data()[4] == doctest::Approx(5.f / (1 + 285)));
  CHECK(y.cpu_data()[5] == doctest::Approx(6.f / (1 + 4 + 9 + 25 + 36 + 64 + 81)));
}

TEST_CASE("LRN matches its formula") {
  Blob x({2, 7, 3, 4}), y;
  Rng rng(21);
  test::fill_gaussian(x, rng, 2.f);
  lrn("local_size: 5, alpha: 0.5, beta: 0.75, k: 2", x, y);
  check_values(y, direct_lrn(x, 5, 0.5f, 0.75f, 2.f, true));
  lrn("local_size: 9, alpha: 1.5, beta: 0.6", x, y);  // window wider than the 7 channels
  check_values(y, direct_lrn(x, 9, 1.5f, 0.6f, 1.f, true));
  lrn("local_size: 3, alpha: 2, beta: 0.75, norm_region: WITHIN_CHANNEL", x, y);
  check_values(y, direct_lrn(x, 3, 2.f, 0.75f, 1.f, false));
  lrn("local_size: 5, alpha: 0.3, beta: 1.2, norm_region: WITHIN_CHANNEL", x, y);
  check_values(y, direct_lrn(x, 5, 0.3f, 1.2f, 1.f, false));
}

TEST_CASE("LRN rejects bad configurations with clear messages") {
  auto parse_error = [](const std::string& params, const char* message) {
    CAPTURE(params);
    CHECK_THROWS_WITH_AS(test::make_layer("{type: LRN, lrn_param: {" + params + "}}"), doctest::Contains(message),
                         ConfigError);
  };
  parse_error("local_size: 4", "odd");
  parse_error("norm_region: ACROSS", "unknown value 'ACROSS'");
  parse_error("norm_region: WITHIN_CHANNEL, k: 2", "ignores k");
  parse_error("beta: 0.75, kk: 1", "unknown key 'kk'");
  auto t = test::make_layer("{type: LRN}");
  Blob x({2, 3, 4}), y;
  Context ctx(1);
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}), doctest::Contains("4-D bottom"), ConfigError);
  // In place, each output would read neighbours already overwritten (a race on the GPU).
  auto in_place = test::make_layer("{type: LRN}");
  Blob z({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(in_place.layer->setup(ctx, {&z}, {&z}), doctest::Contains("LRN cannot run in place"), ConfigError);
}

TEST_CASE("LRN gradient") {
  struct Case {
    const char* params;
    std::vector<int> shape;
  };
  const std::vector<Case> cases = {
      {"local_size: 5, alpha: 1, beta: 0.75", {2, 7, 3, 3}},
      {"local_size: 3, alpha: 2, beta: 0.6, k: 2", {2, 4, 2, 3}},
      {"local_size: 7, alpha: 1, beta: 0.75", {1, 3, 2, 2}},  // window wider than the channels
      {"local_size: 3, alpha: 2, beta: 0.75, norm_region: WITHIN_CHANNEL", {2, 2, 4, 5}},
      {"local_size: 5, alpha: 1, beta: 1.1, norm_region: WITHIN_CHANNEL", {1, 2, 4, 4}},
  };
  for (const auto& c : cases) {
    const std::string params = c.params;
    CAPTURE(params);
    test::check_gradients("{type: LRN, lrn_param: {" + params + "}}", {.shape = c.shape, .seed = 23});
  }
}
