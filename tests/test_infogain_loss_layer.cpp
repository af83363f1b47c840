#include <cmath>
#include <fstream>

#include "layer_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

namespace {

// Scores (2, 3) of log 1, log 2, log 3: the softmax is 1/6, 1/3, 1/2 for both samples.
void fill_scores(Blob& x) {
  x.reshape({2, 3});
  test::set_values(x, {0, std::log(2.f), std::log(3.f), 0, std::log(2.f), std::log(3.f)});
}

// H, rows indexed by the true label.
const std::vector<float> kH = {1, 0.5f, 0, 0, 1, 0, 0.25f, 0, 2};
// -sum_k H[l, k] ln p_k for labels 0 and 2:
//   l = 0: ln 6 + 0.5 ln 3 = 2.34106561;  l = 2: 0.25 ln 6 + 2 ln 2 = 1.83423423.
constexpr float kTerm0 = 2.34106561f, kTerm2 = 1.83423423f;

// A .binaryproto holding a (1, 1, 3, 3) BlobProto: the legacy num/channels/height/
// width fields (varints under 128 take one byte), then the values as packed floats
// (field 5), little-endian as on the test machine.
void write_h(const std::string& path, const std::vector<float>& h) {
  const char side = 3;
  std::string bytes = {0x08, 1, 0x10, 1, 0x18, side, 0x20, side, 0x2A, static_cast<char>(h.size() * 4)};
  bytes.append(reinterpret_cast<const char*>(h.data()), h.size() * 4);
  std::ofstream(path, std::ios::binary) << bytes;
}

struct Run {
  float loss;
  std::vector<float> dx;
};

// H as the third bottom.
Run run(const std::string& cfg, const std::vector<float>& labels, const std::vector<float>& h = kH) {
  CAPTURE(cfg);
  auto t = test::make_layer(cfg);
  Blob x, label({2}), hb({1, 1, 3, 3}), loss;
  fill_scores(x);
  test::set_values(label, labels);
  test::set_values(hb, h);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label, &hb}, {&loss});
  t.layer->forward(ctx, {&x, &label, &hb}, {&loss});
  loss.set_diff(t.layer->loss_weight(0));
  t.layer->backward(ctx, {&loss}, {true, false, false}, {&x, &label, &hb});
  return {loss.cpu_data()[0], {x.cpu_diff(), x.cpu_diff() + 6}};
}

}  // namespace

TEST_CASE("InfogainLoss forward weighs the log probabilities by the label's row of H") {
  CHECK(run("{type: InfogainLoss}", {0, 2}).loss == doctest::Approx((kTerm0 + kTerm2) / 2));
  // H = identity is SoftmaxWithLoss: (ln 6 + ln 2) / 2.
  CHECK(run("{type: InfogainLoss}", {0, 2}, {1, 0, 0, 0, 1, 0, 0, 0, 1}).loss == doctest::Approx(1.24245332f));
}

TEST_CASE("InfogainLoss backward is (p * rowsum(H) - H row) * loss weight / normalizer") {
  Run r = run("{type: InfogainLoss, loss_weight: 2}", {0, 2});
  // Sample 0 (row sum 1.5): 1/6*1.5 - 1, 1/3*1.5 - 0.5, 1/2*1.5; sample 1 (row sum 2.25):
  // 1/6*2.25 - 0.25, 1/3*2.25, 1/2*2.25 - 2; times 2 / 2.
  const float want[] = {-0.75f, 0, 0.75f, 0.125f, 0.75f, -0.875f};
  for (int i = 0; i < 6; ++i) CHECK(r.dx[static_cast<size_t>(i)] == doctest::Approx(want[i]));
}

TEST_CASE("InfogainLoss ignore_label and normalization") {
  const std::string head = "{type: InfogainLoss, loss_param: {ignore_label: 7";
  CHECK(run(head + "}}", {0, 7}).loss == doctest::Approx(kTerm0));  // VALID: one label counted
  CHECK(run(head + ", normalization: FULL}}", {0, 7}).loss == doctest::Approx(kTerm0 / 2));
  CHECK(run(head + ", normalization: BATCH_SIZE}}", {0, 7}).loss == doctest::Approx(kTerm0 / 2));
  CHECK(run(head + ", normalization: NONE}}", {7, 2}).loss == doctest::Approx(kTerm2));
  Run r = run(head + "}}", {7, 2});
  for (int i = 0; i < 3; ++i) CHECK(r.dx[static_cast<size_t>(i)] == 0.f);  // the ignored sample
  // Caffe refuses the legacy normalize for this layer.
  CHECK_THROWS_AS(test::make_layer("{type: InfogainLoss, loss_param: {normalize: true}}"), ConfigError);
}

TEST_CASE("InfogainLoss reads H from infogain_loss_param.source") {
  test::TempDir dir;
  write_h(dir / "H.binaryproto", kH);
  auto t = test::make_layer("{type: InfogainLoss, infogain_loss_param: {source: '" + (dir / "H.binaryproto") + "'}}");
  Blob x, label({2}), loss, prob;
  fill_scores(x);
  test::set_values(label, {0, 2});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&loss, &prob});
  t.layer->forward(ctx, {&x, &label}, {&loss, &prob});
  CHECK(loss.cpu_data()[0] == doctest::Approx((kTerm0 + kTerm2) / 2));
  // The second top holds the softmax.
  test::check_values(prob, {1 / 6.f, 1 / 3.f, 0.5f, 1 / 6.f, 1 / 3.f, 0.5f});
}

TEST_CASE("InfogainLoss errors: no H, an unreadable file, an H of the wrong size, a bad label") {
  Blob x, label({2}), loss;
  fill_scores(x);
  test::set_values(label, {0, 2});
  Context ctx(1);
  auto no_h = test::make_layer("{type: InfogainLoss}");
  CHECK_THROWS_AS(no_h.layer->setup(ctx, {&x, &label}, {&loss}), ConfigError);

  auto missing =
      test::make_layer("{name: info, type: InfogainLoss, infogain_loss_param: {source: /nonexistent/H.binaryproto}}");
  try {
    missing.layer->setup(ctx, {&x, &label}, {&loss});
    FAIL("no error for a missing H file");
  } catch (const ConfigError&) {
    FAIL("a missing file is a runtime error, not a config error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("info") != std::string::npos);
    CHECK(msg.find("/nonexistent/H.binaryproto") != std::string::npos);
  }

  auto t = test::make_layer("{type: InfogainLoss}");
  Blob h4({2, 2});
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x, &label, &h4}, {&loss}), ConfigError);

  Blob h({3, 3});
  test::set_values(h, kH);
  t.layer->setup(ctx, {&x, &label, &h}, {&loss});
  test::set_values(label, {0, 3});
  CHECK_THROWS_AS(t.layer->forward(ctx, {&x, &label, &h}, {&loss}), Error);
}

TEST_CASE("InfogainLoss gradient") {
  const char* cfgs[] = {
      "{type: InfogainLoss}",
      "{type: InfogainLoss, loss_weight: 0.5, loss_param: {ignore_label: 1, normalization: FULL}}",
      "{type: InfogainLoss, infogain_loss_param: {axis: -1}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    // Scores (2, 3, 3): 3 classes on axis 1 over 2*3 positions, or on the last axis over 2*3.
    Blob x({2, 3, 3}), label({2, 3}), h({3, 3}), loss;
    Rng rng(9);
    test::fill_gaussian(x, rng);
    test::fill_uniform(h, rng, 0.f, 2.f);
    for (int i = 0; i < label.count(); ++i) label.mutable_cpu_data()[i] = static_cast<float>(rng.below(3));
    test::GradCheck opt;
    opt.bottoms = {0};
    test::check_gradients(*t.layer, {&x, &label, &h}, {&loss}, opt);
  }
}
