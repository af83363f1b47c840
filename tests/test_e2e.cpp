// End to end on real data: LeNet on Fashion-MNIST (Debian's dataset-fashion-mnist)
// must really learn. BVLC Caffe with this net and schedule reaches 86.8% at 1,500
// iterations; the bar here is 85%.
#include <doctest/doctest.h>

#include <regex>

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
    const auto r = test::run(test::crema_binary() + " train " + solver + " --set snapshot_prefix=" + (dir / "ft") + extra);
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
