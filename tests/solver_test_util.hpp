// Helpers for solver tests: build a solver job from YAML, step it quietly, set and
// compare blob values, and the tiny one-sample net whose gradients are easy by hand.
#pragma once

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/yaml_config.hpp"

namespace crema::test {

// Keeps the solver's setup and per-iteration log out of the test output.
struct QuietLog {
  spdlog::level::level_enum saved = spdlog::get_level();
  QuietLog() { spdlog::set_level(spdlog::level::warn); }
  ~QuietLog() { spdlog::set_level(saved); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;
};

// A solver with everything it points into.
struct Job {
  std::unique_ptr<Node> root;
  SolverSpec spec;
  NetSpec net;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Solver> solver;
  Blob& blob(const std::string& name) { return *solver->net().blob(name); }
  Blob& param(const std::string& layer, int i) { return *solver->net().layer_by_name(layer)->blobs()[static_cast<size_t>(i)]; }
};

// `yaml` is a whole solver file with an inline net.
inline std::unique_ptr<Job> make_job(const std::string& yaml) {
  QuietLog quiet;
  auto j = std::make_unique<Job>();
  j->root = std::make_unique<Node>(io::parse_yaml(yaml, "solver.yaml"));
  j->spec = SolverSpec::parse(*j->root);
  j->net = NetSpec::parse(*j->spec.net);
  j->ctx = std::make_unique<Context>(j->spec.random_seed >= 0 ? j->spec.random_seed : 1701);
  j->solver = std::make_unique<Solver>(j->spec, j->net, *j->ctx);
  return j;
}

inline void step(Job& j, int n) {
  QuietLog quiet;
  j.solver->step(n);
}

inline void set(Blob& b, const std::vector<float>& v) {
  REQUIRE(static_cast<int>(v.size()) == b.count());
  std::copy(v.begin(), v.end(), b.mutable_cpu_data());
}

inline void check_close(const Blob& b, const std::vector<double>& want, double tol = 2e-6) {
  REQUIRE(static_cast<int>(want.size()) == b.count());
  for (int i = 0; i < b.count(); ++i) {
    INFO("element " << i << ": got " << b.cpu_data()[i] << ", want " << want[static_cast<size_t>(i)]);
    CHECK(std::fabs(b.cpu_data()[i] - want[static_cast<size_t>(i)]) <= tol);
  }
}

// One sample x = [1, 2], target y = [1], weight W (1, 2), bias b (1), Euclidean loss
// ½(Wx + b - y)²: with W = [0.5, -1], b = 0.25 the output is -1.25, the error
// d = -2.25, the loss 2.53125, dW = d·x = [-2.25, -4.5] and db = -2.25.
inline std::string tiny_net(const std::string& param_line) {
  return "net:\n"
         "  name: tiny\n"
         "  layer:\n"
         "  - name: data\n"
         "    type: DummyData\n"
         "    top: [x, y]\n"
         "    dummy_data_param: {shape: [{dim: [1, 2]}, {dim: [1, 1]}]}\n"
         "  - name: ip\n"
         "    type: InnerProduct\n"
         "    bottom: x\n"
         "    top: out\n" +
         (param_line.empty() ? std::string() : "    param: " + param_line + "\n") +
         "    inner_product_param: {num_output: 1}\n"
         "  - name: loss\n"
         "    type: EuclideanLoss\n"
         "    bottom: [out, y]\n"
         "    top: loss\n";
}

// x = [1, 1] → InnerProduct (zero weights) → Power 0.5 → EuclideanLoss against 1: the output
// is sqrt(0) and the loss finite, but the square root's gradient at 0 is infinite, so the
// first update makes the weights infinite.
inline std::string sqrt_at_zero_net() {
  return "net:\n"
         "  name: sqrt0\n"
         "  layer:\n"
         "  - {name: data, type: DummyData, top: [x, y], dummy_data_param: {shape: [{dim: [1, 2]}, {dim: [1, 1]}], "
         "data_filler: [{type: constant, value: 1}, {type: constant, value: 1}]}}\n"
         "  - {name: ip, type: InnerProduct, bottom: x, top: out, inner_product_param: {num_output: 1}}\n"
         "  - {name: sqrt, type: Power, bottom: out, top: root, power_param: {power: 0.5}}\n"
         "  - {name: loss, type: EuclideanLoss, bottom: [root, y], top: loss}\n";
}

inline void init_tiny(Job& j) {
  // DummyData with a constant filler does not refill, so these values stay.
  set(j.blob("x"), {1, 2});
  set(j.blob("y"), {1});
  set(j.param("ip", 0), {0.5f, -1.f});
  set(j.param("ip", 1), {0.25f});
}

}  // namespace crema::test
