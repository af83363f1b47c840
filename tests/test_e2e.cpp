// End to end on real data: LeNet on Fashion-MNIST (Debian's dataset-fashion-mnist)
// must really learn. BVLC Caffe with this net and schedule reaches 86.8% at 1,500
// iterations; the bar here is 85%.
#include <doctest/doctest.h>

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace crema;

TEST_CASE("LeNet on Fashion-MNIST reaches 85% test accuracy within 1,500 iterations" * doctest::timeout(900)) {
  REQUIRE_MESSAGE(test::fashion_mnist_available(),
                  "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (scripts/install_deps.sh does)");
  test::TempDir dir;
  const auto r = test::run(test::crema_binary() + " train " + test::source_dir() +
                           "/configs/fashion_mnist/lenet_solver.yaml --set max_iter=1500 --set test_interval=500"
                           " --set test_initialization=false --set snapshot=0 --set snapshot_prefix=" + (dir / "lenet"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(Iteration 1500, Testing net[^\n]*\n[^\n]*accuracy = ([0-9.]+))")));
  const double accuracy = std::stod(m[1]);
  MESSAGE("LeNet test accuracy after 1,500 iterations: " << accuracy);
  CHECK(accuracy >= 0.85);
  CHECK(std::filesystem::exists(dir / "lenet_iter_1500.caffemodel.h5"));
}

TEST_CASE("fine-tuning Caffe's MNIST LeNet on Fashion-MNIST beats training from scratch" * doctest::timeout(900)) {
  REQUIRE(test::fashion_mnist_available());
  test::TempDir dir;
  const std::string solver = test::source_dir() + "/configs/fashion_mnist/lenet_finetune_solver.yaml";
  const std::string weights = test::source_dir() + "/tests/data/caffe/lenet_deploy/lenet_iter_10000.caffemodel";
  auto accuracy = [&](const std::string& extra) {
    const auto r = test::run(test::crema_binary() + " train " + solver +
                             " --set snapshot_prefix=" + (dir / (extra.empty() ? "scratch" : "ft")) + extra);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex(R"(Iteration 500, Testing net[^\n]*\n[^\n]*accuracy = ([0-9.]+))")));
    return std::stod(m[1]);
  };
  const double scratch = accuracy("");
  const double finetuned = accuracy(" --weights " + weights);
  MESSAGE("after 500 iterations: from scratch " << scratch << ", fine-tuned from Caffe's MNIST LeNet " << finetuned);
  CHECK(finetuned > scratch);
}

namespace {
// Every "Test net output #0: accuracy = A" line of a training log, in order.
std::vector<double> test_accuracies(const std::string& log) {
  std::vector<double> out;
  const std::regex line(R"(Test net output #0: accuracy = ([0-9.]+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
    out.push_back(std::stod((*it)[1]));
  return out;
}
}  // namespace

// Issue 6's bar for precision: bf16 (convolutions and inner products in bfloat16,
// fp32 master weights): LeNet within 0.5 points of the same run in fp32. Both runs
// start from the same seed and see the same batches; the final accuracies are
// compared, and so are the means over the last four tests (one pair of end points
// can differ by chance more than the trend does).
TEST_CASE("precision bf16 trains LeNet on Fashion-MNIST to within 0.5 points of fp32" * doctest::timeout(900)) {
  REQUIRE(test::fashion_mnist_available());
  const auto probe = test::run(test::crema_binary() + " time --model " + test::source_dir() +
                               "/configs/bench/lenet_b64.yaml --iterations 1 --precision bf16");
  if (probe.status != 0 && probe.output.find("neither AVX512-BF16 nor AMX") != std::string::npos) {
    MESSAGE("skipped: this CPU has no native bf16 (crema refuses precision: bf16 here)");
    return;
  }
  test::TempDir dir;
  std::vector<double> accuracy[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    const auto r = test::run(test::crema_binary() + " train " + test::source_dir() +
                             "/configs/fashion_mnist/lenet_solver.yaml --set max_iter=3000 --set test_interval=500"
                             " --set test_initialization=false --set snapshot=0 --set precision=" +
                             (bf16 ? "bf16" : "fp32") + " --set snapshot_prefix=" + (dir / (bf16 ? "bf16" : "fp32")));
    REQUIRE_MESSAGE(r.status == 0, r.output);
    if (bf16) CHECK(r.output.find("precision bf16") != std::string::npos);
    accuracy[bf16] = test_accuracies(r.output);
    REQUIRE(accuracy[bf16].size() == 6);  // at 500, 1000, ..., 3000
  }
  auto last_four = [](const std::vector<double>& a) { return (a[2] + a[3] + a[4] + a[5]) / 4; };
  MESSAGE("LeNet test accuracy at 3,000 iterations: fp32 " << accuracy[0].back() << ", bf16 " << accuracy[1].back()
                                                           << "; mean of the last four tests: fp32 "
                                                           << last_four(accuracy[0]) << ", bf16 "
                                                           << last_four(accuracy[1]));
  CHECK(accuracy[0].back() >= 0.85);
  CHECK(std::fabs(accuracy[1].back() - accuracy[0].back()) <= 0.005);
  CHECK(std::fabs(last_four(accuracy[1]) - last_four(accuracy[0])) <= 0.005);
}

// The shipped sequence example: an LSTM reading each image as 28 rows of 28 pixels.
// Nothing but the recurrence carries the earlier rows to the classifier, which sees
// only the last step's hidden state (88% after the config's 5,000 iterations).
TEST_CASE("an LSTM reading Fashion-MNIST row by row reaches 84% test accuracy within 2,000 iterations" *
          doctest::timeout(900)) {
  REQUIRE_MESSAGE(test::fashion_mnist_available(),
                  "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (scripts/install_deps.sh does)");
  test::TempDir dir;
  const auto r = test::run(test::crema_binary() + " train " + test::source_dir() +
                           "/configs/fashion_mnist/lstm_rows_solver.yaml --set max_iter=2000 --set test_initialization=false"
                           " --set snapshot_prefix=" + (dir / "lstm"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  const std::vector<double> accuracy = test_accuracies(r.output);
  REQUIRE(accuracy.size() == 2);  // at 1,000 and 2,000
  MESSAGE("LSTM (rows) test accuracy after 2,000 iterations: " << accuracy.back());
  CHECK(accuracy.back() >= 0.84);
  CHECK(std::filesystem::exists(dir / "lstm_iter_2000.caffemodel.h5"));
}
