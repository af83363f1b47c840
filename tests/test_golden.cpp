// Golden comparison against an independent framework: five SGD steps of a tiny conv
// net (HDF5Data → Convolution → ReLU → MAX Pooling → InnerProduct → SoftmaxWithLoss,
// momentum, weight decay, per-parameter lr_mult/decay_mult) must give the losses and
// final weights PyTorch computed in float64 (scripts/golden/make_tiny_sgd.py).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

using namespace crema;

TEST_CASE("golden: five SGD steps of a tiny conv net match PyTorch") {
  const std::string golden = test::source_dir() + "/tests/data/golden/";
  test::TempDir dir;
  test::write_file(dir / "batch.txt", golden + "tiny_batch.h5\n");
  const std::string yaml = R"(
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: fixed
max_iter: 5
display: 1
random_seed: 1
net:
  name: tiny
  layer:
    - {name: data, type: HDF5Data, top: [data, label], hdf5_data_param: {source: )" + (dir / "batch.txt") + R"(, batch_size: 4}}
    - {name: conv1, type: Convolution, bottom: data, top: conv1, param: [{lr_mult: 1}, {lr_mult: 2, decay_mult: 0}],
       convolution_param: {num_output: 3, kernel_size: 3, pad: 1}}
    - {name: relu1, type: ReLU, bottom: conv1, top: conv1}
    - {name: pool1, type: Pooling, bottom: conv1, top: pool1, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}
    - {name: ip1, type: InnerProduct, bottom: pool1, top: ip1, param: [{lr_mult: 1}, {lr_mult: 2, decay_mult: 0}],
       inner_product_param: {num_output: 10}}
    - {name: loss, type: SoftmaxWithLoss, bottom: [ip1, label], top: loss}
)";
  const Node root = io::parse_yaml(yaml, "golden.yaml");
  const SolverSpec spec = SolverSpec::parse(root);
  Context ctx(1);
  Solver solver(spec, NetSpec::parse(*spec.net), ctx);
  io::copy_weights(solver.net(), io::load_weights(golden + "tiny_init.caffemodel.h5"), "tiny_init");
  solver.step(5);

  io::H5File expected(golden + "tiny_expected.h5", io::H5File::Mode::Read);
  std::vector<int> shape;
  const auto losses = expected.read_floats("losses", &shape);
  REQUIRE(solver.displayed_losses().size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    INFO("step " << i);
    CHECK(solver.displayed_losses()[i].second == doctest::Approx(losses[i]).epsilon(1e-5));
  }
  for (const char* layer : {"conv1", "ip1"})
    for (int j = 0; j < 2; ++j) {
      const auto want = expected.read_floats(std::string("final/") + layer + "/" + std::to_string(j), &shape);
      const Blob& got = *solver.net().layer_by_name(layer)->blobs()[static_cast<size_t>(j)];
      REQUIRE(got.shape() == shape);
      double worst = 0;
      for (int k = 0; k < got.count(); ++k) worst = std::max(worst, std::fabs(double(got.cpu_data()[k]) - want[size_t(k)]));
      INFO(layer << "/" << j << ": largest difference " << worst);
      CHECK(worst < 2e-6);
    }
}

TEST_CASE("golden: forward and backward through ten Caffe layer types match PyTorch") {
  const std::string golden = test::source_dir() + "/tests/data/golden/layers.h5";
  const Node root = io::parse_yaml(R"(
name: golden_layers
force_backward: true
layer:
  - {name: input, type: Input, top: [data, label], input_param: {shape: [{dim: [2, 3, 6, 6]}, {dim: [2]}]}}
  - {name: conv1, type: Convolution, bottom: data, top: conv1, convolution_param: {num_output: 4, kernel_size: 3, pad: 1}}
  - {name: bn1, type: BatchNorm, bottom: conv1, top: bn1}
  - {name: scale1, type: Scale, bottom: bn1, top: bn1, scale_param: {bias_term: true}}
  - {name: prelu1, type: PReLU, bottom: bn1, top: bn1}
  - {name: pool1, type: Pooling, bottom: bn1, top: pool1, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}
  - {name: deconv1, type: Deconvolution, bottom: pool1, top: deconv1, convolution_param: {num_output: 2, kernel_size: 2, stride: 2}}
  - {name: elu1, type: ELU, bottom: deconv1, top: deconv1, elu_param: {alpha: 0.5}}
  - {name: lrn1, type: LRN, bottom: deconv1, top: lrn1, lrn_param: {local_size: 3, alpha: 0.01, beta: 0.75}}
  - {name: ip1, type: InnerProduct, bottom: lrn1, top: ip1, inner_product_param: {num_output: 5}}
  - {name: loss, type: SoftmaxWithLoss, bottom: [ip1, label], top: loss}
)", "golden_layers.yaml");
  Context ctx(1);
  Net net(NetSpec::parse(root), NetState{Phase::TRAIN, 0, {}}, ctx, true);
  io::H5File f(golden, io::H5File::Mode::Read);
  std::vector<int> shape;
  auto load = [&](const std::string& name, Blob& into) {
    const auto v = f.read_floats(name, &shape);
    REQUIRE_MESSAGE(shape == into.shape(), name);
    std::copy(v.begin(), v.end(), into.mutable_cpu_data());
  };
  load("data", *net.blob("data"));
  load("label", *net.blob("label"));
  const std::vector<std::string> layers = {"conv1", "scale1", "prelu1", "deconv1", "ip1"};
  for (const auto& l : layers)
    for (size_t j = 0; j < net.layer_by_name(l)->blobs().size(); ++j)
      load("init/" + l + "/" + std::to_string(j), *net.layer_by_name(l)->blobs()[j]);

  net.clear_param_diffs();
  const float loss = net.forward(ctx);
  net.backward(ctx);
  CHECK(loss == doctest::Approx(f.read_floats("loss", &shape)[0]).epsilon(1e-5));

  auto compare = [&](const std::string& name, const Blob& got) {
    const auto want = f.read_floats(name, &shape);
    REQUIRE(shape == got.shape());
    double worst = 0, scale = 1e-12;
    for (int k = 0; k < got.count(); ++k) {
      worst = std::max(worst, std::fabs(double(got.cpu_diff()[k]) - want[size_t(k)]));
      scale = std::max(scale, std::fabs(double(want[size_t(k)])));
    }
    INFO(name << ": largest difference " << worst << " (largest value " << scale << ")");
    CHECK(worst <= 1e-4 * scale + 1e-6);
  };
  compare("grad/data", *net.blob("data"));
  for (const auto& l : layers)
    for (size_t j = 0; j < net.layer_by_name(l)->blobs().size(); ++j)
      compare("grad/" + l + "/" + std::to_string(j), *net.layer_by_name(l)->blobs()[j]);
}
