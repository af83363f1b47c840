// Training on the GPU as a user runs it: LeNet on Fashion-MNIST for 200 iterations
// follows the CPU run, and checkpoints move between the devices both ways. Skipped
// without a CUDA device.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include "gpu_test_util.hpp"
#include "io/checkpoint.hpp"
#include "test_util.hpp"

using namespace crema;
namespace fs = std::filesystem;

namespace {

// "Iteration N (…), loss = X" -> X, by N; also the first and last iterations' lines,
// which have no rate in parentheses ("Iteration 0, loss = X").
std::map<int, double> losses(const std::string& log) {
  std::map<int, double> out;
  static const std::regex re(R"(Iteration (\d+)(?: \([^\n]*\))?, loss = ([-0-9.eE+naif]+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    out[std::stoi((*it)[1])] = std::stod((*it)[2]);
  return out;
}

double test_accuracy(const std::string& log, int iter) {
  std::smatch m;
  const std::regex re("Iteration " + std::to_string(iter) + R"(, Testing net[^\n]*\n[^\n]*accuracy = ([0-9.]+))");
  REQUIRE_MESSAGE(std::regex_search(log, m, re), log);
  return std::stod(m[1]);
}

std::string lenet(const std::string& extra) {
  return test::crema_binary() + " train " + test::source_dir() + "/configs/fashion_mnist/lenet_solver.yaml" +
         " --set test_initialization=false --set display=20" + extra;
}

// A device machine may be a bare node with only the working tree: the data is its setup's
// job (scripts/gpu_tests.sh), not a GPU failure. CI installs it, so the CPU runs never skip.
#define SKIP_WITHOUT_FASHION_MNIST()                                                                        \
  do {                                                                                                      \
    if (!test::fashion_mnist_available()) {                                                                 \
      MESSAGE("SKIPPED: Fashion-MNIST is not in /usr/share/datasets/fashion-mnist (apt-get install "        \
              "dataset-fashion-mnist)");                                                                    \
      return;                                                                                               \
    }                                                                                                       \
  } while (0)

}  // namespace

TEST_CASE("GPU training: LeNet for 200 iterations follows the CPU run, in fp32 and in tf32" * doctest::timeout(900)) {
  SKIP_WITHOUT_DEVICE();
  SKIP_WITHOUT_FASHION_MNIST();
  test::TempDir dir;
  const std::string common = " --set max_iter=200 --set test_interval=200 --set test_iter=20 --set snapshot=0";
  const auto cpu = test::run(lenet(common + " --set snapshot_prefix=" + (dir / "cpu/lenet")));
  REQUIRE_MESSAGE(cpu.status == 0, cpu.output);
  const auto gpu = test::run(lenet(common + " --gpu 0 --set snapshot_prefix=" + (dir / "gpu/lenet")));
  REQUIRE_MESSAGE(gpu.status == 0, gpu.output);
  // Same data order and initialisation (LeNet has no dropout); only the order of float
  // sums differs (cuDNN, cuBLAS), so the curves stay close: within 5% of the loss at
  // every display line, and test accuracy within 2 points after 200 iterations.
  const auto a = losses(cpu.output), b = losses(gpu.output);
  REQUIRE(a.size() == 11);  // iterations 0, 20, …, 200
  for (const auto& [iter, loss] : a) {
    REQUIRE(b.count(iter));
    CHECK_MESSAGE(std::abs(b.at(iter) - loss) <= 0.05 * std::max(1.0, loss), "iteration " << iter);
  }
  CHECK(std::abs(test_accuracy(gpu.output, 200) - test_accuracy(cpu.output, 200)) <= 0.02);

  // precision: tf32 rounds the convolutions' and inner products' inputs to 11 bits:
  // the curve strays further, but stays within 10% of the loss and 3 points of accuracy.
  const auto tf32 =
      test::run(lenet(common + " --gpu 0 --set precision=tf32 --set snapshot_prefix=" + (dir / "tf32/lenet")));
  REQUIRE_MESSAGE(tf32.status == 0, tf32.output);
  CHECK(tf32.output.find("precision tf32") != std::string::npos);
  const auto c = losses(tf32.output);
  for (const auto& [iter, loss] : a) {
    REQUIRE(c.count(iter));
    CHECK_MESSAGE(std::abs(c.at(iter) - loss) <= 0.1 * std::max(1.0, loss), "tf32, iteration " << iter);
  }
  CHECK(std::abs(test_accuracy(tf32.output, 200) - test_accuracy(cpu.output, 200)) <= 0.03);
}

TEST_CASE("GPU training: a GPU snapshot resumes on the CPU and a CPU snapshot on the GPU" * doctest::timeout(900)) {
  SKIP_WITHOUT_DEVICE();
  SKIP_WITHOUT_FASHION_MNIST();
  test::TempDir dir;
  // Tested at 140 only: a run tests when its iteration is a multiple of test_interval.
  const std::string common = " --set test_interval=140 --set test_iter=10 --set snapshot=0";
  const auto first = test::run(lenet(common + " --gpu 0 --set max_iter=60 --set snapshot_prefix=" + (dir / "a/lenet")));
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const auto on_cpu = test::run(lenet(common + " --set max_iter=100 --set snapshot_prefix=" + (dir / "a/lenet") +
                                      " --snapshot " + (dir / "a/lenet_iter_60.solverstate.h5")));
  REQUIRE_MESSAGE(on_cpu.status == 0, on_cpu.output);
  const auto back = test::run(lenet(common + " --gpu 0 --set max_iter=140 --set snapshot_prefix=" + (dir / "a/lenet") +
                                    " --snapshot " + (dir / "a/lenet_iter_100.solverstate.h5")));
  REQUIRE_MESSAGE(back.status == 0, back.output);
  // The weights went through both devices and the net still learns.
  CHECK(test_accuracy(back.output, 140) > 0.6);
  const auto w = io::load_weights(dir / "a/lenet_iter_140.caffemodel.h5");
  REQUIRE(!w.empty());
  for (const auto& layer : w)
    for (const auto& [name, blob] : layer.blobs)
      for (int i = 0; i < blob.count(); ++i) REQUIRE(std::isfinite(blob.cpu_data()[i]));
}
