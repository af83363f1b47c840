#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Four samples, three classes:
//   scores            label  rank of the label (ties count against it, as in Caffe)
//   0.1 0.5 0.4       1      1
//   0.7 0.1 0.2       2      2
//   0.3 0.3 0.4       0      3 (tied with class 1)
//   0.2 0.6 0.2       0      3 (tied with class 2)
const float kScores[4][3] = {{0.1f, 0.5f, 0.4f}, {0.7f, 0.1f, 0.2f}, {0.3f, 0.3f, 0.4f}, {0.2f, 0.6f, 0.2f}};
const float kLabels[4] = {1, 2, 0, 0};

struct Result {
  float accuracy;
  std::vector<float> per_class;
};

Result run(const std::string& cfg, Blob& x, Blob& label) {
  auto t = test::make_layer(cfg);
  Blob acc, per_class;
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&acc, &per_class});
  const float loss = t.layer->forward(ctx, {&x, &label}, {&acc, &per_class});
  CHECK(loss == 0.f);  // not a loss
  CHECK(acc.num_axes() == 0);
  return {acc.cpu_data()[0], std::vector<float>(per_class.cpu_data(), per_class.cpu_data() + per_class.count())};
}

void samples_as_rows(Blob& x, Blob& label) {
  x.reshape({4, 3});
  label.reshape({4});
  for (int n = 0; n < 4; ++n)
    for (int c = 0; c < 3; ++c) x.mutable_cpu_data()[n * 3 + c] = kScores[n][c];
  std::copy(kLabels, kLabels + 4, label.mutable_cpu_data());
}

}  // namespace

TEST_CASE("Accuracy top_k, with ties counted against the label, and per-class accuracy") {
  Blob x, label;
  samples_as_rows(x, label);
  Result r1 = run("{type: Accuracy}", x, label);
  CHECK(r1.accuracy == doctest::Approx(0.25f));
  CHECK(r1.per_class == std::vector<float>{0.f, 1.f, 0.f});
  Result r2 = run("{type: Accuracy, accuracy_param: {top_k: 2}}", x, label);
  CHECK(r2.accuracy == doctest::Approx(0.5f));
  CHECK(r2.per_class == std::vector<float>{0.f, 1.f, 1.f});
  Result r3 = run("{type: Accuracy, accuracy_param: {top_k: 3}}", x, label);
  CHECK(r3.accuracy == doctest::Approx(1.f));
}

TEST_CASE("Accuracy skips the ignore_label") {
  Blob x, label;
  samples_as_rows(x, label);
  label.mutable_cpu_data()[1] = -1;
  Result r = run("{type: Accuracy, accuracy_param: {ignore_label: -1}}", x, label);
  CHECK(r.accuracy == doctest::Approx(1.f / 3));
  CHECK(r.per_class == std::vector<float>{0.f, 1.f, 0.f});  // class 2 had no counted sample
  // Without ignore_label, -1 is an error that names the value and the range.
  try {
    run("{type: Accuracy}", x, label);
    FAIL("no error for label -1");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("label -1") != std::string::npos);
    CHECK(std::string(e.what()).find("[0, 3)") != std::string::npos);
  }
  // A fraction is no class: Caffe truncates 1.5 to class 1 (and -0.5 to class 0) silently.
  for (float fraction : {1.5f, -0.5f}) {
    label.mutable_cpu_data()[1] = fraction;
    for (const char* yaml : {"{type: Accuracy}", "{type: Accuracy, accuracy_param: {ignore_label: -1}}"})
      CHECK_THROWS_WITH_AS(run(yaml, x, label),
                           doctest::Contains(fraction > 0 ? "label 1.5 is not a whole number; labels must be class "
                                                            "indices in [0, 3)"
                                                          : "label -0.5 is not a whole number"),
                           Error);
  }
}

TEST_CASE("Accuracy along other axes") {
  Blob label;
  SUBCASE("classes on axis 1 with positions after it: (1, 3, 4)") {
    Blob x({1, 3, 4});
    for (int n = 0; n < 4; ++n)
      for (int c = 0; c < 3; ++c) x.mutable_cpu_data()[c * 4 + n] = kScores[n][c];
    label.reshape({1, 4});
    std::copy(kLabels, kLabels + 4, label.mutable_cpu_data());
    CHECK(run("{type: Accuracy}", x, label).accuracy == doctest::Approx(0.25f));
    CHECK(run("{type: Accuracy, accuracy_param: {top_k: 2}}", x, label).accuracy == doctest::Approx(0.5f));
  }
  SUBCASE("classes on the last axis: (2, 2, 3) with axis 2 or -1") {
    Blob x({2, 2, 3});
    for (int n = 0; n < 4; ++n)
      for (int c = 0; c < 3; ++c) x.mutable_cpu_data()[n * 3 + c] = kScores[n][c];
    label.reshape({2, 2});
    std::copy(kLabels, kLabels + 4, label.mutable_cpu_data());
    CHECK(run("{type: Accuracy, accuracy_param: {axis: 2}}", x, label).accuracy == doctest::Approx(0.25f));
    CHECK(run("{type: Accuracy, accuracy_param: {axis: -1, top_k: 2}}", x, label).accuracy ==
          doctest::Approx(0.5f));
  }
}

TEST_CASE("Accuracy rejects top_k above the number of classes and a mismatched label count") {
  Blob x, label;
  samples_as_rows(x, label);
  CHECK_THROWS_AS(run("{type: Accuracy, accuracy_param: {top_k: 4}}", x, label), ConfigError);
  label.reshape({3});
  CHECK_THROWS_AS(run("{type: Accuracy}", x, label), ConfigError);
}

TEST_CASE("Accuracy backward writes a zero gradient") {
  auto t = test::make_layer("{type: Accuracy}");
  CHECK_FALSE(t.layer->allow_force_backward(0));
  Blob x, label, acc;
  samples_as_rows(x, label);
  Context ctx(1);
  t.layer->setup(ctx, {&x, &label}, {&acc});
  t.layer->forward(ctx, {&x, &label}, {&acc});
  x.set_diff(5.f);
  t.layer->backward(ctx, {&acc}, {true, false}, {&x, &label});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == 0.f);
}
