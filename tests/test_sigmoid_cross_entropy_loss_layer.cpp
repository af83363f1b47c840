#include <spdlog/fmt/fmt.h>

#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Scores 0, 2, -1, 3 in (2, 2) with targets 1, 0, 0.5, 1. Per element the cross
// entropy is log 2, log(1 + e^2), (log(1 + e) + log(1 + e^-1)) / 2, log(1 + e^-3).
const std::vector<float> kScores = {0, 2, -1, 3};
const float kTerms[] = {0.69314718f, 2.12692801f, 0.81326169f, 0.04858735f};
const float kSum = kTerms[0] + kTerms[1] + kTerms[2] + kTerms[3];
// sigmoid of the scores.
const float kP[] = {0.5f, 0.88079708f, 0.26894142f, 0.95257413f};

float forward_loss(const std::string& cfg, const std::vector<float>& targets) {
  CAPTURE(cfg);
  auto t = test::make_layer(cfg);
  Blob x({2, 2}), target({2, 2}), loss;
  test::set_values(x, kScores);
  test::set_values(target, targets);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &target}, {&loss});
  t.layer->forward(ctx, {&x, &target}, {&loss});
  CHECK(loss.num_axes() == 0);
  return loss.cpu_data()[0];
}

}  // namespace

TEST_CASE("SigmoidCrossEntropyLoss forward divides by the batch size by default") {
  CHECK(forward_loss("{type: SigmoidCrossEntropyLoss}", {1, 0, 0.5f, 1}) == doctest::Approx(kSum / 2));
}

TEST_CASE("SigmoidCrossEntropyLoss normalization modes and the legacy normalize") {
  const std::vector<float> t = {1, 0, 0.5f, 1};
  const std::string head = "{type: SigmoidCrossEntropyLoss, loss_param: {";
  CHECK(forward_loss(head + "normalization: VALID}}", t) == doctest::Approx(kSum / 4));
  CHECK(forward_loss(head + "normalization: FULL}}", t) == doctest::Approx(kSum / 4));
  CHECK(forward_loss(head + "normalization: BATCH_SIZE}}", t) == doctest::Approx(kSum / 2));
  CHECK(forward_loss(head + "normalization: NONE}}", t) == doctest::Approx(kSum));
  CHECK(forward_loss(head + "normalize: true}}", t) == doctest::Approx(kSum / 4));
  CHECK(forward_loss(head + "normalize: false}}", t) == doctest::Approx(kSum / 2));
}

TEST_CASE("SigmoidCrossEntropyLoss ignore_label skips targets that equal it") {
  const std::vector<float> t = {1, 0, -1, 1};  // the third is ignored
  const float sum = kTerms[0] + kTerms[1] + kTerms[3];
  const std::string head = "{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: -1";
  CHECK(forward_loss(head + "}}", t) == doctest::Approx(sum / 2));
  CHECK(forward_loss(head + ", normalization: VALID}}", t) == doctest::Approx(sum / 3));
  CHECK(forward_loss(head + ", normalization: FULL}}", t) == doctest::Approx(sum / 4));
}

TEST_CASE("SigmoidCrossEntropyLoss refuses a target outside 0 to 1, unless ignore_label skips it") {
  // A mask saved as 0/255 gave a loss of -1e7 and trained on (exit 0).
  for (const float bad : {255.f, -0.5f, 1.5f, std::nanf("")}) {
    CAPTURE(bad);
    const std::string want = "the target at position 2 of the batch is " + fmt::format("{}", bad) +
                             "; targets are probabilities in [0, 1] (a mask saved as 0 and 255 needs scaling by "
                             "1/255";
    CHECK_THROWS_WITH_AS(forward_loss("{type: SigmoidCrossEntropyLoss}", {1, 0, bad, 1}),
                         doctest::Contains(want.c_str()), Error);
  }
  // 255 as the ignore_label is skipped, as Caffe's segmentation masks mark their borders.
  CHECK(forward_loss("{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: 255}}", {1, 0, 255, 1}) ==
        doctest::Approx((kTerms[0] + kTerms[1] + kTerms[3]) / 2));
}

TEST_CASE("SigmoidCrossEntropyLoss is stable for large scores") {
  auto t = test::make_layer("{type: SigmoidCrossEntropyLoss, loss_param: {normalization: NONE}}");
  Blob x({1, 2}), target({1, 2}), loss;
  test::set_values(x, {100, -100});
  test::set_values(target, {0, 0});  // loss 100 for the first, e^-100 for the second
  Context ctx(1);
  t.layer->setup(ctx, {&x, &target}, {&loss});
  t.layer->forward(ctx, {&x, &target}, {&loss});
  CHECK(loss.cpu_data()[0] == doctest::Approx(100.f));
}

TEST_CASE("SigmoidCrossEntropyLoss backward is (p - t) * loss weight / normalizer, zero where ignored") {
  auto t = test::make_layer(
      "{type: SigmoidCrossEntropyLoss, loss_weight: 3, loss_param: {ignore_label: -1, normalization: VALID}}");
  Blob x({2, 2}), target({2, 2}), loss;
  test::set_values(x, kScores);
  const std::vector<float> targets = {1, 0, -1, 1};
  test::set_values(target, targets);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &target}, {&loss});
  t.layer->forward(ctx, {&x, &target}, {&loss});
  loss.set_diff(3.f);
  target.set_diff(-5.f);
  t.layer->backward(ctx, {&loss}, {true, false}, {&x, &target});
  for (int i = 0; i < 4; ++i) {
    const float want = i == 2 ? 0.f : 3.f * (kP[i] - targets[static_cast<size_t>(i)]) / 3.f;
    CHECK(x.cpu_diff()[i] == doctest::Approx(want));
    CHECK(target.cpu_diff()[i] == -5.f);
  }
}

TEST_CASE("SigmoidCrossEntropyLoss needs as many targets as scores") {
  auto t = test::make_layer("{type: SigmoidCrossEntropyLoss}");
  Blob x({2, 3}), target({2, 2}), loss;
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x, &target}, {&loss}), ConfigError);
}

TEST_CASE("SigmoidCrossEntropyLoss gradient") {
  const char* cfgs[] = {
      "{type: SigmoidCrossEntropyLoss}",
      "{type: SigmoidCrossEntropyLoss, loss_weight: 2.5}",
      "{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: -1}}",
      "{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: -1, normalization: VALID}}",
      "{type: SigmoidCrossEntropyLoss, loss_param: {normalization: NONE}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob x({3, 2, 4}), target({3, 2, 4}), loss;
    Rng rng(11);
    test::fill_gaussian(x, rng, 2.f);
    test::fill_uniform(target, rng, 0.f, 1.f);
    if (std::string(cfg).find("ignore_label") != std::string::npos)  // ignored targets
      for (int i = 0; i < target.count(); i += 5) target.mutable_cpu_data()[i] = -1.f;
    test::GradCheck opt;
    opt.bottoms = {0};
    test::check_gradients(*t.layer, {&x, &target}, {&loss}, opt);
  }
}
