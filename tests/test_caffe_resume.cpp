// Caffe users' snapshots, as they would bring them: Caffe's own solver prototxts and
// binary/HDF5 snapshots resume and train in crema.
#include <doctest/doctest.h>

#include <regex>

#include "test_util.hpp"

using namespace crema;

namespace {
std::string caffe(const std::string& name) { return test::source_dir() + "/tests/data/caffe/" + name; }

// The last "Iteration N, loss = X" / "Iteration N (...), loss = X" of a log.
int last_iteration(const std::string& log) {
  int last = -1;
  static const std::regex re(R"(Iteration (\d+)[^\n]*, loss = )");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    last = std::stoi((*it)[1]);
  return last;
}

// CIFAR-10 itself is not available: the data layer becomes DummyData (as a user
// would swap it through a converted config), everything else is Caffe's file.
const std::string kCifarDummy =
    " --set 'net.layer[0]={name: cifar, type: DummyData, top: [data, label], include: {phase: TRAIN},"
    " dummy_data_param: {shape: [{dim: [100, 3, 32, 32]}, {dim: [100]}],"
    " data_filler: [{type: gaussian, std: 60}, {type: constant, value: 3}]}}'"
    " --set 'net.layer[1]={name: cifar, type: DummyData, top: [data, label], include: {phase: TEST},"
    " dummy_data_param: {shape: [{dim: [100, 3, 32, 32]}, {dim: [100]}], data_filler: [{type: gaussian, std: 60}]}}'";
}  // namespace

TEST_CASE("Caffe's V1 LeNet snapshot resumes and trains on Fashion-MNIST") {
  REQUIRE(test::fashion_mnist_available());
  test::TempDir dir;
  // Caffe's V1 solver names its net relative to the Caffe root; point it at the copy here,
  // and swap its LMDB MNIST sources for the Fashion-MNIST IDX files.
  const std::string data = "/usr/share/datasets/fashion-mnist/";
  const auto r = test::run(test::crema_binary() + " train " + caffe("v1_lenet/lenet_solver.prototxt") +
                           " --set net=" + caffe("v1_lenet/lenet_train_test.prototxt") +
                           " --set solver_mode=CPU --set max_iter=5060 --set display=20 --set test_iter=5"
                           " --set snapshot_prefix=" + (dir / "v1") +
                           " --set net.layer[0].data_param.backend=IDX --set net.layer[0].data_param.source=" + data +
                           "train-images-idx3-ubyte.gz --set net.layer[1].data_param.backend=IDX"
                           " --set net.layer[1].data_param.source=" + data + "t10k-images-idx3-ubyte.gz"
                           " --snapshot " + caffe("v1_lenet/lenet_iter_5000.solverstate"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("V1") != std::string::npos);  // the upgrade is logged
  CHECK(last_iteration(r.output) == 5060);
  CHECK(std::filesystem::exists(dir / "v1_iter_5060.caffemodel.h5"));
  // MNIST weights score far above chance on Fashion-MNIST only after some training; the
  // point here is that the loss is finite and the run continued from iteration 5000.
  CHECK(r.output.find("Iteration 5000") != std::string::npos);
  CHECK(r.output.find("nan") == std::string::npos);
}

TEST_CASE("cifar10_quick: the 4000-iteration binary snapshot and the 5000-iteration HDF5 one both resume") {
  test::TempDir dir;
  const std::string solver = caffe("cifar10_quick_solver.prototxt");
  const std::string common = " --set net=" + caffe("cifar10_quick_train_test.prototxt") +
                             " --set solver_mode=CPU --set test_iter=1 --set test_interval=0 --set display=5"
                             " --set snapshot=0 --set snapshot_prefix=" + (dir / "cifar") + kCifarDummy;
  auto r = test::run(test::crema_binary() + " train " + solver + common + " --set max_iter=4010 --snapshot " +
                     caffe("cifar10_quick_iter_4000.solverstate"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(last_iteration(r.output) >= 4005);
  CHECK(std::filesystem::exists(dir / "cifar_iter_4010.caffemodel.h5"));
  // --resume finds Caffe's binary pair under the prefix where crema has written no state yet;
  // once it has, crema's own are taken.
  test::TempDir run;
  for (const char* kind : {".solverstate", ".caffemodel"})
    std::filesystem::copy_file(caffe(std::string("cifar10_quick_iter_4000") + kind),
                               run / (std::string("cifar10_quick_iter_4000") + kind));
  const std::string in_run = " --set snapshot_prefix=" + (run / "cifar10_quick");
  r = test::run(test::crema_binary() + " train " + solver + common + in_run + " --set max_iter=4010 --resume");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("--resume: the latest snapshot under " + (run / "cifar10_quick") + " is Caffe's binary " +
                              (run / "cifar10_quick_iter_4000.solverstate")) != std::string::npos,
                r.output);
  CHECK(last_iteration(r.output) >= 4005);
  CHECK(std::filesystem::exists(run / "cifar10_quick_iter_4010.solverstate.h5"));
  r = test::run(test::crema_binary() + " train " + solver + common + in_run + " --set max_iter=4012 --resume");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK_MESSAGE(r.output.find("Resuming from " + (run / "cifar10_quick_iter_4010.solverstate.h5")) != std::string::npos,
                r.output);

  // The HDF5 pair was written by Caffe resuming with solver_lr1 (base_lr 0.0001).
  r = test::run(test::crema_binary() + " train " + caffe("cifar10_quick_solver_lr1.prototxt") + common +
                " --set max_iter=5010 --snapshot " + caffe("cifar10_quick_iter_5000.solverstate.h5"));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(std::filesystem::exists(dir / "cifar_iter_5010.caffemodel.h5"));
  CHECK(r.output.find("does not record its solver type (Caffe's do not): resuming as SGD") != std::string::npos);

  // Caffe's states do not say which rule wrote them: SGD's signed momentum read as
  // RMSProp's squared gradients once became NaN at the first update ("diverged").
  r = test::run(test::crema_binary() + " train " + solver + common +
                " --set type=RMSProp --set momentum=0 --set max_iter=4010 --snapshot " +
                caffe("cifar10_quick_iter_4000.solverstate"));
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("of the snapshot holds negative values where a RMSProp solver keeps running squares of "
                              "the gradients, so another solver type wrote it") != std::string::npos,
                r.output);
  CHECK(r.output.find("diverged") == std::string::npos);
}
