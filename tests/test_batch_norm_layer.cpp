#include <cmath>
#include <vector>

#include "engine/error.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

namespace {

// (N 2, C 2, S 2): channel 0 holds 1, 3 | 5, 7 (mean 4, variance 5); channel 1 holds
// 0, 0 | 2, 2 (mean 1, variance 1).
Blob two_channels() {
  Blob x({2, 2, 2});
  set_values(x, {1, 3, 0, 0, 5, 7, 2, 2});
  return x;
}

}  // namespace

TEST_CASE("BatchNorm TRAIN forward normalises each channel with the batch statistics") {
  auto t = test::make_layer("{type: BatchNorm}");
  Blob x = two_channels(), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float s0 = std::sqrt(5.f + 1e-5f), s1 = std::sqrt(1.f + 1e-5f);
  check_values(y, {-3 / s0, -1 / s0, -1 / s1, -1 / s1, 1 / s0, 3 / s0, 1 / s1, 1 / s1});
}

TEST_CASE("BatchNorm keeps Caffe's running statistics: sums divided by a scale factor") {
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {moving_average_fraction: 0.5}}");
  Blob x = two_channels(), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  auto& blobs = t.layer->blobs();
  REQUIRE(blobs.size() == 3);
  CHECK(blobs[0]->shape() == std::vector<int>{2});
  CHECK(blobs[1]->shape() == std::vector<int>{2});
  CHECK(blobs[2]->shape() == std::vector<int>{1});
  t.layer->forward(ctx, {&x}, {&y});
  // factor 1; mean as is; variance with Bessel's correction, 4 values per channel.
  check_values(*blobs[0], {4, 1});
  check_values(*blobs[1], {5 * 4.f / 3, 4.f / 3});
  check_values(*blobs[2], {1});
  t.layer->forward(ctx, {&x}, {&y});
  // factor 0.5 * 1 + 1; sums 0.5 old + new.
  check_values(*blobs[0], {6, 1.5f});
  check_values(*blobs[1], {10, 2});
  check_values(*blobs[2], {1.5f});
}

TEST_CASE("BatchNorm TEST forward uses the stored statistics divided by the factor") {
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {eps: 0.01}}", Phase::TEST);
  Blob x = two_channels(), y;
  Context ctx(1);
  // Estimates mean (2, -1) and variance (4, 0.25), stored times factor 2.
  t.layer->blobs().push_back(std::make_shared<Blob>(std::vector<int>{2}));
  t.layer->blobs().push_back(std::make_shared<Blob>(std::vector<int>{2}));
  t.layer->blobs().push_back(std::make_shared<Blob>(std::vector<int>{1}));
  set_values(*t.layer->blobs()[0], {4, -2});
  set_values(*t.layer->blobs()[1], {8, 0.5f});
  set_values(*t.layer->blobs()[2], {2});
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float s0 = std::sqrt(4.01f), s1 = std::sqrt(0.26f);
  check_values(y, {-1 / s0, 1 / s0, 1 / s1, 1 / s1, 3 / s0, 5 / s0, 3 / s1, 3 / s1});
  check_values(*t.layer->blobs()[2], {2});  // untouched in TEST
}

TEST_CASE("BatchNorm use_global_stats overrides the phase, a zero factor means zero statistics") {
  {
    // TRAIN with global statistics, all zero (factor 0): y = x / sqrt(eps).
    auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {use_global_stats: true, eps: 0.25}}");
    Blob x = two_channels(), y;
    Context ctx(1);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    check_values(y, {2, 6, 0, 0, 10, 14, 4, 4});
    check_values(*t.layer->blobs()[2], {0});
  }
  {
    // TEST with batch statistics updates the running sums, as Caffe does.
    auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {use_global_stats: false}}", Phase::TEST);
    Blob x = two_channels(), y;
    Context ctx(1);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    check_values(*t.layer->blobs()[0], {4, 1});
    check_values(*t.layer->blobs()[2], {1});
  }
}

TEST_CASE("BatchNorm statistics are frozen: lr_mult 0 and no parameter gradient") {
  auto t = test::make_layer("{type: BatchNorm}");
  const auto& param = t.layer->spec().param;
  REQUIRE(param.size() == 3);
  for (const auto& p : param) {
    CHECK(p.lr_mult == 0.f);
    CHECK(p.decay_mult == 0.f);
  }
  // Caffe's old three-entry form is frozen whatever it says.
  auto old = test::make_layer("{type: BatchNorm, param: [{lr_mult: 1}, {lr_mult: 1}, {lr_mult: 1}]}");
  for (const auto& p : old.layer->spec().param) CHECK(p.lr_mult == 0.f);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: BatchNorm, param: [{lr_mult: 1}]}"),
                       doctest::Contains("computed, not learnt"), ConfigError);
  CHECK_NOTHROW(test::make_layer("{type: BatchNorm, param: [{lr_mult: 0}]}"));
  // Outside [0, 1] the running sums blew up after a few hundred iterations, blamed on the learning rate.
  for (const char* fraction : {"1.5", "-1"})
    CHECK_THROWS_WITH_AS(
        test::make_layer(std::string("{type: BatchNorm, batch_norm_param: {moving_average_fraction: ") + fraction +
                         "}}"),
        doctest::Contains("moving_average_fraction must lie in [0, 1]"), ConfigError);
  CHECK_NOTHROW(test::make_layer("{type: BatchNorm, batch_norm_param: {moving_average_fraction: 1}}"));
  // PyTorch's names, whose meaning differs from Caffe's, are said so.
  CHECK_THROWS_WITH_AS(test::make_layer("{type: BatchNorm, batch_norm_param: {momentum: 0.1}}"),
                       doctest::Contains("PyTorch's momentum m is moving_average_fraction 1 - m (0.1 is 0.9)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: BatchNorm, batch_norm_param: {affine: true}}"),
                       doctest::Contains("a Scale layer after it"), ConfigError);

  Blob x = two_channels(), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  for (int i = 0; i < 3; ++i) CHECK_FALSE(t.layer->param_propagate_down(i));
  t.layer->forward(ctx, {&x}, {&y});
  for (auto& b : t.layer->blobs()) b->set_diff(0.f);
  y.set_diff(1.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  for (auto& b : t.layer->blobs()) CHECK(b->asum_diff() == 0.0);
}

TEST_CASE("BatchNorm backward with batch statistics matches the closed form") {
  // y = (x - mean) / s; with dy = y the gradient is (dy - mean(dy) - y mean(dy y)) / s
  // = (y - 0 - y * 1 * (var / (var + eps))) / s, so nearly 0; with dy = 1 it is 0.
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {eps: 0}}");
  Blob x = two_channels(), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  y.set_diff(1.f);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == doctest::Approx(0).epsilon(1e-6));
  // dy = e_0 (only x[0] = 1 of channel 0 counts): dx_i = (d_i0 - 1/4 - y_i y_0 / 4) / sqrt(5).
  std::fill(y.mutable_cpu_diff(), y.mutable_cpu_diff() + y.count(), 0.f);
  y.mutable_cpu_diff()[0] = 1.f;
  t.layer->backward(ctx, {&y}, {true}, {&x});
  const float s = std::sqrt(5.f);
  const std::vector<float> y0 = {-3 / s, -1 / s, 1 / s, 3 / s};  // channel 0's outputs
  const std::vector<int> where = {0, 1, 4, 5};                       // their positions
  for (size_t k = 0; k < 4; ++k)
    CHECK(x.cpu_diff()[where[k]] == doctest::Approx(((k == 0) - 0.25f - y0[k] * y0[0] / 4) / s));
  CHECK(x.cpu_diff()[2] == 0.f);  // channel 1 is unaffected
}

TEST_CASE("BatchNorm in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: BatchNorm}", {{3, 2, 2, 2}}, test::Compare::approx);
  test::check_in_place_matches_out_of_place("{type: BatchNorm, batch_norm_param: {use_global_stats: true}}",
                                            {{3, 2, 2}}, test::Compare::approx);
}

TEST_CASE("BatchNorm on 2-D and 1-D bottoms") {
  // (N, C): every column is a channel.
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {eps: 0}}");
  Blob x({2, 2}), y;
  set_values(x, {1, 10, 3, 30});
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  check_values(y, {-1, -1, 1, 1});
  // (N): one channel.
  auto t1 = test::make_layer("{type: BatchNorm, batch_norm_param: {eps: 0}}");
  Blob x1({4}), y1;
  set_values(x1, {0, 0, 2, 2});
  t1.layer->setup(ctx, {&x1}, {&y1});
  t1.layer->forward(ctx, {&x1}, {&y1});
  CHECK(t1.layer->blobs()[0]->count() == 1);
  check_values(y1, {-1, -1, 1, 1});
}

TEST_CASE("BatchNorm refuses batch statistics over one value per channel, which zero every output") {
  Context ctx(1);
  Blob one({1, 3, 1, 1}), y;  // batch 1, 1x1: each channel's batch holds a single value
  set_values(one, {0.5f, -2.f, 7.f});
  auto t = test::make_layer("{type: BatchNorm}");
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&one}, {&y}),
                       doctest::Contains("the bottom (1 3 1 1 (3)) gives batch statistics over 1 value per channel, "
                                         "which normalise every value to 0"),
                       ConfigError);
  // With the stored statistics (TEST, or use_global_stats) one image is fine.
  auto test_phase = test::make_layer("{type: BatchNorm}", Phase::TEST);
  test_phase.layer->setup(ctx, {&one}, {&y});
  test_phase.layer->forward(ctx, {&one}, {&y});
  CHECK(y.count() == 3);
}

TEST_CASE("BatchNorm gradient") {
  test::GradCheck opt;
  opt.check_params = false;  // statistics, not parameters
  opt.step = 1e-3f;
  test::check_gradients("{type: BatchNorm}", {{3, 2, 2, 3}}, opt);
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {use_global_stats: true}}");
  Blob x = test::gaussian_blob({{2, 3, 2}}), y;
  for (int i = 0; i < 3; ++i) t.layer->blobs().push_back(std::make_shared<Blob>(std::vector<int>{i < 2 ? 3 : 1}));
  set_values(*t.layer->blobs()[0], {0.5f, -1, 2});
  set_values(*t.layer->blobs()[1], {1, 2, 0.5f});
  set_values(*t.layer->blobs()[2], {1});
  test::check_gradients(*t.layer, {&x}, {&y}, opt);
}

// Activations far from zero with a small spread: E[x^2] - E[x]^2 in float would lose
// every digit of the variance. The statistics must match a two-pass double computation.
TEST_CASE("BatchNorm statistics stay exact for a large mean and a small spread") {
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {moving_average_fraction: 0, eps: 0}}");
  Blob x({8, 3, 6, 6}), y;
  Rng rng(5);
  test::fill_gaussian(x, rng, 0.01f, 1000.f);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float* xs = x.cpu_data();  // (8, 3, 36)
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int n = 0; n < 8; ++n)
      for (int s = 0; s < 36; ++s) sum += xs[(n * 3 + c) * 36 + s];
    const double mean = sum / 288;
    for (int n = 0; n < 8; ++n)
      for (int s = 0; s < 36; ++s) sq += std::pow(xs[(n * 3 + c) * 36 + s] - mean, 2);
    const double var = sq / 288;
    CAPTURE(c);
    // factor 1 after one forward with fraction 0: the blobs hold this batch's moments,
    // the variance with Bessel's correction.
    CHECK(t.layer->blobs()[0]->cpu_data()[c] == doctest::Approx(mean).epsilon(1e-7));
    CHECK(t.layer->blobs()[1]->cpu_data()[c] == doctest::Approx(var * 288 / 287).epsilon(1e-4));
  }
  // The normalised output has unit variance per channel.
  const float* ys = y.cpu_data();
  double sq = 0;
  for (int n = 0; n < 8; ++n)
    for (int s = 0; s < 36; ++s) sq += static_cast<double>(ys[(n * 3) * 36 + s]) * ys[(n * 3) * 36 + s];
  CHECK(sq / 288 == doctest::Approx(1.0).epsilon(1e-3));
}

namespace {
// The running statistics after a full batch and then an empty one (a Filter that kept
// no item) on ctx: the empty batch must leave them as the full one left them.
void check_empty_batch_keeps_statistics(Context& ctx) {
  auto t = test::make_layer("{type: BatchNorm, batch_norm_param: {moving_average_fraction: 0.5}}");
  Blob x = two_channels(), y;
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  Blob empty({0, 2, 2}), out;
  t.layer->reshape({&empty}, {&out});
  t.layer->forward(ctx, {&empty}, {&out});
  CHECK(out.count() == 0);
  check_values(*t.layer->blobs()[0], {4, 1});
  check_values(*t.layer->blobs()[1], {5 * 4.f / 3, 4.f / 3});
  check_values(*t.layer->blobs()[2], {1});
}
}  // namespace

TEST_CASE("BatchNorm on an empty batch keeps its running statistics, on the CPU and the GPU") {
  Context cpu(1);
  check_empty_batch_keeps_statistics(cpu);
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, 1);
  check_empty_batch_keeps_statistics(*gpu);
}
