// BatchNorm, Scale, PReLU, SPP and Parameter wired into a Net the way Caffe models
// use them (BatchNorm then Scale and PReLU in place on its top; a Parameter as a
// loss target): the net's gradients match central differences of its loss, which
// checks the in-place bookkeeping (BatchNorm's kept output, Scale's kept input).
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/yaml_config.hpp"
#include "net_test_util.hpp"

using namespace crema;

namespace {

const char* kNet = R"(
name: bn_scale_spp
force_backward: true
layer:
  - {name: input, type: Input, top: x0, input_param: {shape: {dim: [3, 2, 4, 4]}}}
  - {name: bn, type: BatchNorm, bottom: x0, top: x}
  - {name: scale, type: Scale, bottom: x, top: x,
     scale_param: {bias_term: true, filler: {type: uniform, min: 0.5, max: 1.5},
                   bias_filler: {type: gaussian, std: 0.3}}}
  - {name: prelu, type: PReLU, bottom: x, top: x}
  - {name: spp, type: SPP, bottom: x, top: pooled, spp_param: {pyramid_height: 2, pool: AVE}}
  - {name: target, type: Parameter, top: t, parameter_param: {shape: {dim: [3, 10]}}}
  - {name: loss, type: EuclideanLoss, bottom: [pooled, t], top: loss}
)";

}  // namespace

TEST_CASE("BatchNorm, in-place Scale and PReLU, SPP and a Parameter target train in a net") {
  Node root = io::parse_yaml(kNet, "net.yaml");
  NetSpec spec = NetSpec::parse(root);
  Context ctx(17);
  Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, /*quiet=*/true);
  Blob& x0 = *net.blob("x0");
  Rng rng(5);
  for (int i = 0; i < x0.count(); ++i) x0.mutable_cpu_data()[i] = rng.uniform(-2.f, 2.f);
  Layer& target = *net.layer_by_name("target");
  for (int i = 0; i < 30; ++i) target.blobs()[0]->mutable_cpu_data()[i] = rng.uniform(-1.f, 1.f);

  net.clear_param_diffs();
  const float loss = net.forward_backward(ctx);
  CHECK(std::isfinite(loss));
  CHECK(net.blob("pooled")->shape() == std::vector<int>{3, 10});

  // The Parameter's gradient is EuclideanLoss's on its second bottom: (t - pooled) / N.
  const Blob& pooled = *net.blob("pooled");
  const Blob& t = *target.blobs()[0];
  for (int i = 0; i < 30; ++i)
    CHECK(t.cpu_diff()[i] == doctest::Approx((t.cpu_data()[i] - pooled.cpu_data()[i]) / 3.f).epsilon(1e-4));

  // The input (through BatchNorm) and the learnt parameters of Scale and PReLU
  // against central differences.
  std::vector<std::pair<std::string, Blob*>> checked = {{"input", &x0}};
  for (const char* name : {"scale", "prelu"})
    for (auto& blob : net.layer_by_name(name)->blobs()) checked.emplace_back(name, blob.get());
  for (const auto& [name, blob] : checked) {
    const std::vector<float> analytic(blob->cpu_diff(), blob->cpu_diff() + blob->count());
    for (int i = 0; i < blob->count(); i += blob == &x0 ? 7 : 1) {
      const double numeric = test::numeric_derivative(net, ctx, *blob, i, 2e-3f);
      INFO(name << " element " << i << ": analytic " << analytic[static_cast<size_t>(i)] << ", numeric " << numeric);
      CHECK(std::fabs(analytic[static_cast<size_t>(i)] - numeric) <= 5e-3 * std::max(1.0, std::fabs(numeric)));
    }
  }
  // BatchNorm's statistics get no gradient.
  for (const auto& blob : net.layer_by_name("bn")->blobs()) CHECK(blob->asum_diff() == 0.0);
}

TEST_CASE("BatchNorm statistics stay out of the solver: lr_mult 0 in the net, untouched by weight decay") {
  const char* solver_yaml = R"(
net:
  name: bn_solver
  layer:
    - {name: data, type: DummyData, top: [x, target],
       dummy_data_param: {shape: [{dim: [4, 3]}, {dim: [4, 2]}], data_filler: [{type: gaussian}, {type: gaussian}]}}
    - {name: bn, type: BatchNorm, bottom: x, top: xn}
    - {name: fc, type: InnerProduct, bottom: xn, top: y,
       inner_product_param: {num_output: 2, weight_filler: {type: xavier}}}
    - {name: loss, type: EuclideanLoss, bottom: [y, target], top: loss}
base_lr: 0.1
momentum: 0.9
weight_decay: 0.5
max_iter: 3
random_seed: 3
)";
  spdlog::set_level(spdlog::level::warn);
  Node root = io::parse_yaml(solver_yaml, "solver.yaml");
  SolverSpec spec = SolverSpec::parse(root);
  NetSpec net_spec = NetSpec::parse(*spec.net);
  Context ctx(3);
  Solver solver(spec, net_spec, ctx);
  Net& net = solver.net();
  // bn's three blobs come first among the learnable parameters, frozen.
  REQUIRE(net.learnable_params().size() == 5);
  const Layer& bn = *net.layer_by_name("bn");
  for (size_t i = 0; i < 3; ++i) {
    CHECK(net.learnable_params()[i] == bn.blobs()[i].get());
    CHECK(net.params_lr()[i] == 0.f);
    CHECK(net.params_decay()[i] == 0.f);
    CHECK_FALSE(bn.param_propagate_down(static_cast<int>(i)));
  }
  solver.step(3);
  spdlog::set_level(spdlog::level::info);
  // Three forwards moved the factor to 1 + 0.999 (1 + 0.999); decay would have shrunk it.
  CHECK(bn.blobs()[2]->cpu_data()[0] == doctest::Approx(1.f + 0.999f * (1.f + 0.999f)));
}
