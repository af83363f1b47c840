// Helpers for solver tests: build a solver job from YAML, step it quietly, set and
// compare blob values, and the tiny one-sample net whose gradients are easy by hand.
#pragma once

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/yaml_config.hpp"
#include "test_util.hpp"

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

// A net whose every pass changes what a later one sees: a cropping, mirroring reader
// (shuffling unless `shuffle` is false), BatchNorm's running statistics, Dropout and DummyData
// noise (the context's RNG), an RNN carrying its state from batch to batch; a test net with a
// reader that one pass leaves mid-way (2 of 5 batches). iter_size 3, a test pass every 3
// iterations. `dir` holds write_toy_idx's "train" and "test" sets.
inline std::string passes_solver_yaml(const std::string& dir, bool shuffle = true) {
  return "net:\n"
         "  name: passes\n"
         "  layer:\n"
         "  - {name: d, type: Data, top: [data, label], include: {phase: TRAIN}, transform_param: {scale: 0.004, "
         "crop_size: 8, mirror: true}, data_param: {source: " +
         dir +
         "/train-images-idx3-ubyte, batch_size: 16, "
         "shuffle: " +
         (shuffle ? "true" : "false") +
         "}}\n"
         "  - {name: d, type: Data, top: [data, label], include: {phase: TEST}, transform_param: {scale: 0.004, "
         "crop_size: 8}, data_param: {source: " +
         dir +
         "/test-images-idx3-ubyte, batch_size: 16}}\n"
         "  - {name: conv, type: Convolution, bottom: data, top: conv, convolution_param: {num_output: 4, "
         "kernel_size: 3, weight_filler: {type: xavier}}}\n"
         "  - {name: bn, type: BatchNorm, bottom: conv, top: conv}\n"
         "  - {name: sc, type: Scale, bottom: conv, top: conv, scale_param: {bias_term: true}}\n"
         "  - {name: relu, type: ReLU, bottom: conv, top: conv}\n"
         "  - {name: fc1, type: InnerProduct, bottom: conv, top: fc1, inner_product_param: {num_output: 12, "
         "weight_filler: {type: xavier}}}\n"
         "  - {name: noise, type: DummyData, top: noise, dummy_data_param: {shape: {dim: [16, 12]}, data_filler: "
         "{type: gaussian, std: 0.1}}}\n"
         "  - {name: sum, type: Eltwise, bottom: [fc1, noise], top: fc1n}\n"
         "  - {name: drop, type: Dropout, bottom: fc1n, top: fc1n, dropout_param: {dropout_ratio: 0.3}}\n"
         "  - {name: seq, type: Reshape, bottom: data, top: seq, reshape_param: {shape: {dim: [4, 4, 64]}}}\n"
         "  - {name: cont, type: DummyData, top: cont, dummy_data_param: {shape: {dim: [4, 4]}, data_filler: "
         "{type: constant, value: 1}}}\n"
         "  - {name: rnn, type: RNN, bottom: [seq, cont], top: rnn, recurrent_param: {num_output: 6, "
         "weight_filler: {type: xavier}}}\n"
         "  - {name: flat, type: Reshape, bottom: rnn, top: flat, reshape_param: {shape: {dim: [16, 6]}}}\n"
         "  - {name: cat, type: Concat, bottom: [fc1n, flat], top: feat}\n"
         "  - {name: fc2, type: InnerProduct, bottom: feat, top: fc2, inner_product_param: {num_output: 10, "
         "weight_filler: {type: xavier}}}\n"
         // The labels pass through a layer (Power: x), so that net setup, which refuses an
         // out-of-range label that a data layer hands a classifier straight, leaves bad_label's
         // to the batch that reads it, as it does an LMDB record's.
         "  - {name: lab, type: Power, bottom: label, top: lab}\n"
         "  - {name: acc, type: Accuracy, bottom: [fc2, lab], top: accuracy, include: {phase: TEST}}\n"
         "  - {name: loss, type: SoftmaxWithLoss, bottom: [fc2, lab], top: loss}\n"
         "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.001\niter_size: 3\nmax_iter: 100\ndisplay: 1\n"
         "test_iter: 2\ntest_interval: 3\ntest_initialization: false\nrandom_seed: 42\n";
}

// Every parameter blob of the TRAIN net, BatchNorm's statistics included, layer by layer.
inline std::vector<std::vector<float>> all_blobs(Solver& solver) {
  std::vector<std::vector<float>> values;
  Net& net = solver.net();
  for (int i = 0; i < net.num_layers(); ++i)
    for (const auto& b : net.layer(i).blobs()) values.emplace_back(b->cpu_data(), b->cpu_data() + b->count());
  return values;
}

// How check_cut_short cuts a run of passes_solver_yaml's job short, and what that must leave.
struct CutShort {
  bool shuffle = true;                                                             // the TRAIN reader's
  std::function<void(const std::string& dir)> damage = [](const std::string&) {};  // the data, before the run
  std::function<Solver::Action(Solver&)> poll = [](Solver&) { return Solver::Action::None; };
  std::function<void(const std::string& dir)> mend = [](const std::string&) {};  // the data, before the resume
  std::string error;  // in the Error the run ends with; "" for a stop
  int iter = 0;       // the iteration snapshotted, undone
  std::string said;   // in the log
};

// Runs passes_solver_yaml's job made by `make` (a CPU or a GPU job), cut short by `cut`: it
// must end with one snapshot, of iteration cut.iter as it began. With the data mended, a job
// resumed from that snapshot must end at iteration 6 where an uninterrupted one does (values
// within `tol`, relative; 0: bit for bit), with the same displayed losses and test scores.
inline void check_cut_short(const CutShort& cut, const std::function<std::unique_ptr<Job>(const std::string&)>& make,
                            double tol) {
  TempDir dir;
  write_toy_idx(dir.path().string(), "train", 400, 1);
  write_toy_idx(dir.path().string(), "test", 100, 2);
  const std::string yaml = passes_solver_yaml(dir.path().string(), cut.shuffle);
  const auto record_tests = [](std::map<int, std::vector<double>>& rows) {
    return [&rows](const MetricsRow& row) {
      if (row.test_net < 0) return;
      for (const auto& [name, value] : row.values) rows[row.iter].push_back(value.value_or(-1));
    };
  };

  cut.damage(dir.path().string());
  auto stopped = make(yaml);
  std::vector<int> snapshots;
  SolverState state;
  std::vector<std::vector<float>> weights;
  stopped->solver->on_snapshot = [&](Solver& s) {
    snapshots.push_back(s.iter());
    state = s.state();
    weights = all_blobs(s);
  };
  stopped->solver->poll_action = [&] { return cut.poll(*stopped->solver); };
  std::string log;
  {
    CaptureLog capture;
    if (cut.error.empty()) {
      step(*stopped, 6);
      CHECK(stopped->solver->stopped_early());
      CHECK(stopped->solver->iter() == cut.iter);
    } else {
      CHECK_THROWS_WITH_AS(step(*stopped, 6), doctest::Contains(cut.error.c_str()), Error);
    }
    log = capture.text();
  }
  CHECK_MESSAGE(log.find(cut.said) != std::string::npos, log);
  REQUIRE(snapshots == std::vector<int>{cut.iter});

  cut.mend(dir.path().string());
  std::map<int, std::vector<double>> test_rows, resumed_rows;  // by iteration, the test scores
  auto straight = make(yaml);
  straight->solver->on_metrics = record_tests(test_rows);
  step(*straight, 6);
  auto resumed = make(yaml);
  resumed->solver->on_metrics = record_tests(resumed_rows);
  Net& net = resumed->solver->net();
  size_t k = 0;
  for (int i = 0; i < net.num_layers(); ++i)
    for (const auto& b : net.layer(i).blobs()) {
      REQUIRE(k < weights.size());
      REQUIRE(static_cast<int>(weights[k].size()) == b->count());
      std::copy(weights[k].begin(), weights[k].end(), b->mutable_cpu_data());
      ++k;
    }
  resumed->solver->restore(state);
  step(*resumed, 6 - cut.iter);
  REQUIRE(resumed->solver->iter() == 6);

  const auto close = [tol](double got, double want) {
    return tol == 0 ? got == want : std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want));
  };
  const auto want = all_blobs(*straight->solver), got = all_blobs(*resumed->solver);
  REQUIRE(want.size() == got.size());
  for (size_t b = 0; b < want.size(); ++b) {
    REQUIRE(want[b].size() == got[b].size());
    size_t differ = 0;
    for (size_t e = 0; e < want[b].size(); ++e) differ += !close(got[b][e], want[b][e]);
    CHECK_MESSAGE(differ == 0, "blob " << b << ": " << differ << " of " << want[b].size() << " values differ");
  }
  const auto& shown = straight->solver->displayed_losses();
  const auto& resumed_shown = resumed->solver->displayed_losses();
  REQUIRE(shown.size() == 6);
  REQUIRE(resumed_shown.size() == static_cast<size_t>(6 - cut.iter));
  for (size_t i = 0; i < resumed_shown.size(); ++i) {
    CHECK(resumed_shown[i].first == shown[i + static_cast<size_t>(cut.iter)].first);
    CHECK(close(resumed_shown[i].second, shown[i + static_cast<size_t>(cut.iter)].second));
  }
  REQUIRE(test_rows.count(3) == 1);  // the test pass at iteration 3, which every cut here comes at or before
  REQUIRE(resumed_rows.count(3) == 1);
  REQUIRE(resumed_rows[3].size() == test_rows[3].size());
  for (size_t i = 0; i < test_rows[3].size(); ++i) CHECK(close(resumed_rows[3][i], test_rows[3][i]));
  // The resumed iterations changed the weights (a resume that trained nothing cannot pass).
  size_t moved = 0;
  for (size_t b = 0; b < want.size(); ++b)
    for (size_t e = 0; e < want[b].size(); ++e) moved += weights[b][e] != want[b][e];
  CHECK(moved > 100);
}

// A SIGTERM after the first pass of iteration 3 (its 10th batch taken), its test pass done.
inline CutShort stop_between_passes() {
  CutShort cut;
  cut.poll = [](Solver& s) {
    return s.iter() == 3 && s.net().data_stats().batches > 9 ? Solver::Action::Stop : Solver::Action::None;
  };
  cut.iter = 3;
  cut.said = "Stopped in iteration 3 after 1 of its 3 passes (iter_size): the iteration is undone";
  return cut;
}

// Label `bad` for sample `sample` of write_toy_idx's `split` set (and back to its own in mend).
inline CutShort bad_label(const std::string& split, int sample, int iter) {
  CutShort cut;
  const auto saved = std::make_shared<char>();
  const auto put = [split, sample](const std::string& dir, const char* value, char* old) {
    std::fstream f(dir + "/" + split + "-labels-idx1-ubyte", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(8 + sample);  // the IDX header, then one byte per label
    if (old) f.get(*old);
    f.seekp(8 + sample);
    f.put(*value);
    REQUIRE(f.good());
  };
  cut.damage = [put, saved](const std::string& dir) {
    const char twelve = 12;
    put(dir, &twelve, saved.get());
  };
  cut.mend = [put, saved](const std::string& dir) { put(dir, saved.get(), nullptr); };
  cut.error = "is out of range";
  cut.iter = iter;
  cut.said = "Wrote a snapshot of iteration " + std::to_string(iter) + " as it began";
  return cut;
}

}  // namespace crema::test
