#include <cfloat>
#include <cmath>

#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Scores (2, 3, 2): at every one of the 4 positions (n, w) the class scores are
// log 1, log 2, log 3, so the probabilities are 1/6, 1/3, 1/2.
void fill_scores(Blob& x) {
  x.reshape({2, 3, 2});
  float* p = x.mutable_cpu_data();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 2; ++w) p[(n * 3 + c) * 2 + w] = std::log(static_cast<float>(c + 1));
}

void set_labels(Blob& label, std::vector<float> values) {
  label.reshape({2, 2});
  std::copy(values.begin(), values.end(), label.mutable_cpu_data());
}

float forward_loss(const std::string& cfg, Blob& x, Blob& label) {
  auto t = test::make_layer(cfg);
  Blob loss;
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&loss});
  t.layer->forward(ctx, {&x, &label}, {&loss});
  CHECK(loss.num_axes() == 0);
  return loss.cpu_data()[0];
}

}  // namespace

TEST_CASE("SoftmaxWithLoss forward: -log p of the label, averaged over the labels") {
  Blob x, label;
  fill_scores(x);
  set_labels(label, {0, 1, 2, 0});  // p = 1/6, 1/3, 1/2, 1/6
  CHECK(forward_loss("{type: SoftmaxWithLoss}", x, label) == doctest::Approx(std::log(216.f) / 4));
}

TEST_CASE("SoftmaxWithLoss normalization modes and ignore_label") {
  Blob x, label;
  fill_scores(x);
  set_labels(label, {0, 1, 2, 7});  // the last is ignored: sum = log 6 + log 3 + log 2
  const float sum = std::log(36.f);
  const std::string head = "{type: SoftmaxWithLoss, loss_param: {ignore_label: 7";
  CHECK(forward_loss(head + "}}", x, label) == doctest::Approx(sum / 3));  // VALID by default
  CHECK(forward_loss(head + ", normalization: VALID}}", x, label) == doctest::Approx(sum / 3));
  CHECK(forward_loss(head + ", normalization: FULL}}", x, label) == doctest::Approx(sum / 4));
  CHECK(forward_loss(head + ", normalization: BATCH_SIZE}}", x, label) == doctest::Approx(sum / 2));
  CHECK(forward_loss(head + ", normalization: NONE}}", x, label) == doctest::Approx(sum));
  // Legacy normalize: true is VALID, false is BATCH_SIZE; normalization wins over it.
  CHECK(forward_loss(head + ", normalize: true}}", x, label) == doctest::Approx(sum / 3));
  CHECK(forward_loss(head + ", normalize: false}}", x, label) == doctest::Approx(sum / 2));
  CHECK(forward_loss(head + ", normalize: false, normalization: NONE}}", x, label) == doctest::Approx(sum));
  // Every label ignored: the normaliser stays at 1, so the loss is 0, not NaN.
  set_labels(label, {7, 7, 7, 7});
  CHECK(forward_loss(head + "}}", x, label) == 0.f);
}

TEST_CASE("SoftmaxWithLoss clamps the probability at FLT_MIN") {
  Blob x({1, 2}), label({1});
  x.mutable_cpu_data()[0] = 0;
  x.mutable_cpu_data()[1] = 200;  // p(class 0) = e^-200 underflows to 0
  label.mutable_cpu_data()[0] = 0;
  CHECK(forward_loss("{type: SoftmaxWithLoss}", x, label) == doctest::Approx(-std::log(FLT_MIN)));
}

TEST_CASE("SoftmaxWithLoss second top holds the probabilities") {
  auto t = test::make_layer("{type: SoftmaxWithLoss, softmax_param: {axis: 1}}");
  Blob x, label, loss, prob;
  fill_scores(x);
  set_labels(label, {0, 1, 2, 0});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&loss, &prob});
  t.layer->forward(ctx, {&x, &label}, {&loss, &prob});
  REQUIRE(prob.shape() == x.shape());
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 2; ++w) CHECK(prob.cpu_data()[(n * 3 + c) * 2 + w] == doctest::Approx((c + 1) / 6.f));
}

TEST_CASE("SoftmaxWithLoss backward is (p - onehot) * loss weight / normalizer, zero where ignored") {
  auto t = test::make_layer("{type: SoftmaxWithLoss, loss_weight: 2, loss_param: {ignore_label: 7}}");
  Blob x, label, loss;
  fill_scores(x);
  set_labels(label, {0, 1, 2, 7});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&loss});
  CHECK(t.layer->forward(ctx, {&x, &label}, {&loss}) == doctest::Approx(2 * std::log(36.f) / 3));
  loss.set_diff(2.f);  // what the net puts into a loss top with loss_weight 2
  label.set_diff(-5.f);
  t.layer->backward(ctx, {&loss}, {true, false}, {&x, &label});
  const int labels[2][2] = {{0, 1}, {2, -1}};
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 2; ++w) {
        const int l = labels[n][w];
        const float want = l < 0 ? 0.f : 2.f * ((c + 1) / 6.f - (c == l ? 1.f : 0.f)) / 3.f;
        CHECK(x.cpu_diff()[(n * 3 + c) * 2 + w] == doctest::Approx(want));
      }
  for (int i = 0; i < label.count(); ++i) CHECK(label.cpu_diff()[i] == -5.f);  // labels untouched
}

TEST_CASE("SoftmaxWithLoss reports an out-of-range label with the layer, value and range") {
  Blob x, label;
  fill_scores(x);
  for (float bad : {3.f, -1.f}) {
    set_labels(label, {0, 1, bad, 0});
    try {
      forward_loss("{name: loss1, type: SoftmaxWithLoss}", x, label);
      FAIL("no error for label " << bad);
    } catch (const Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("loss1") != std::string::npos);
      CHECK(msg.find("label " + std::to_string(static_cast<int>(bad))) != std::string::npos);
      CHECK(msg.find("[0, 3)") != std::string::npos);
    }
  }
}

TEST_CASE("SoftmaxWithLoss rejects a label count that does not match the scores") {
  auto t = test::make_layer("{type: SoftmaxWithLoss}");
  Blob x({2, 3, 2}), label({2, 3}), loss;
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x, &label}, {&loss}), ConfigError);
}

TEST_CASE("SoftmaxWithLoss, Accuracy and InfogainLoss say when the labels come first") {
  for (const char* type : {"SoftmaxWithLoss", "Accuracy", "InfogainLoss"}) {
    CAPTURE(type);
    const bool infogain = std::string(type) == "InfogainLoss";  // its matrix H as a third bottom
    auto t = test::make_layer(std::string("{name: loss, type: ") + type + ", bottom: [label, ip" +
                              (infogain ? ", H" : "") + "]}");
    Blob scores({4, 3}), label({4}), h({3, 3}), loss;
    Context ctx(1);
    BlobVec bottom = {&label, &scores};
    if (infogain) bottom.push_back(&h);
    CHECK_THROWS_WITH_AS(
        t.layer->setup(ctx, bottom, {&loss}),
        doctest::Contains("(loss): the scores, bottom 0 (label) of shape 4 (4), have no axis 1 to hold "
                          "the classes; the bottoms are (scores, labels): are they written the other "
                          "way round?"),
        ConfigError);
  }
}

TEST_CASE("SoftmaxWithLoss gradient") {
  const char* cfgs[] = {
      "{type: SoftmaxWithLoss}",
      "{type: SoftmaxWithLoss, loss_weight: 3}",
      "{type: SoftmaxWithLoss, loss_param: {ignore_label: 1}}",
      "{type: SoftmaxWithLoss, loss_param: {ignore_label: 1, normalization: FULL}}",
      "{type: SoftmaxWithLoss, loss_param: {normalization: BATCH_SIZE}}",
      "{type: SoftmaxWithLoss, loss_param: {normalization: NONE}}",
      "{type: SoftmaxWithLoss, softmax_param: {axis: -1}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    const bool last_axis = std::string(cfg).find("axis") != std::string::npos;
    auto t = test::make_layer(cfg);
    // Scores (2, 4, 3): 4 classes over 2*3 positions on axis 1, or 3 classes over 2*4 on the last.
    Blob x({2, 4, 3}), label(last_axis ? std::vector<int>{2, 4} : std::vector<int>{2, 3}), loss;
    Rng rng(3);
    test::fill_gaussian(x, rng);
    const int classes = last_axis ? 3 : 4;
    for (int i = 0; i < label.count(); ++i) label.mutable_cpu_data()[i] = static_cast<float>(rng.below(static_cast<uint32_t>(classes)));
    test::GradCheck opt;
    opt.bottoms = {0};
    test::check_gradients(*t.layer, {&x, &label}, {&loss}, opt);
  }
}

TEST_CASE("SoftmaxWithLoss gradient with the probability top") {
  auto t = test::make_layer("{type: SoftmaxWithLoss}");
  Blob x({3, 5}), label({3}), loss, prob;
  Rng rng(4);
  test::fill_gaussian(x, rng);
  const float labels[] = {4, 0, 2};
  std::copy(labels, labels + 3, label.mutable_cpu_data());
  test::GradCheck opt;
  opt.bottoms = {0};
  test::check_gradients(*t.layer, {&x, &label}, {&loss, &prob}, opt);
}
