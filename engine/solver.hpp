// Solver: Caffe's training loop and its update pipeline. The step order, learning-rate
// policies and regularisation follow ../shared/reference/caffe-compat.md; what each
// solver `type` does with the regularised gradient lives in engine/update_rules.hpp.
// Files are not the engine's business: snapshots are handed to a callback the app
// sets, and the full training state is exposed as SolverState for io/ to persist.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/context.hpp"
#include "engine/net.hpp"
#include "engine/rng.hpp"

namespace crema {

struct UpdateRule;

struct SolverSpec {
  const Node* net = nullptr;  // the net map (io/ resolves `net: file.yaml` into it)
  std::string type = "SGD";  // an UpdateRule::type (engine/update_rules.hpp)
  // Learning rate and its policy.
  float base_lr = 0.f;
  std::string lr_policy = "fixed";
  float gamma = 0.f, power = 0.f;
  int stepsize = 0;
  std::vector<int> stepvalue;
  float min_lr = 0.f;  // cosine's floor
  // What the config holds that this solver will not use, or that works against its name
  // (gamma above 1 with step), said once when a fresh run starts.
  std::vector<std::string> warnings;
  // Linear warm-up in front of any policy (crema's extension; 0 = off).
  int warmup_iter = 0;
  float warmup_start_lr = 0.f;
  // Update.
  float momentum = 0.f, weight_decay = 0.f;
  std::string regularization_type = "L2";
  float clip_gradients = -1.f;
  int iter_size = 1;
  float delta = 1e-8f, momentum2 = 0.999f, rms_decay = 0.99f;
  // Loop.
  int max_iter = 0;
  int display = 0;
  int average_loss = 1;
  std::vector<int> test_iter;
  Mark test_iter_mark;  // where test_iter was set, for the warning when test_interval is not
  int test_interval = 0;
  bool test_initialization = true;
  bool test_compute_loss = false;
  int snapshot = 0;
  std::string snapshot_prefix;
  bool snapshot_after_train = true;
  bool snapshot_diff = false;
  int snapshot_keep = 0;  // crema's: only the latest N snapshots stay on disk (0: all); the caller removes them
  std::string snapshot_format = "HDF5";
  long long random_seed = -1;
  std::string solver_mode = "CPU";
  int device_id = 0;
  Precision precision = Precision::fp32;
  Mark precision_mark;      // where `precision` was set, for errors
  Mark solver_mode_mark;    // where `solver_mode` was set, for errors
  Mark device_id_mark;      // where `device_id` was set
  // Caffe's `weights`: the files a fresh run starts from, in order (later ones override),
  // as written (the command finds them); each entry may list several, split at commas.
  std::vector<std::string> weights;
  std::vector<Mark> weights_marks;  // where each was written
  Mark snapshot_prefix_mark;  // where snapshot_prefix was set (no file: unset, or --set)
  bool debug_info = false;  // per-layer magnitudes in the TRAIN net (see Net::set_debug_info)
  // Which metrics files the app writes from Solver::on_metrics (crema's extension).
  bool metrics_csv = true, metrics_tensorboard = true;
  NetStateSetting train_state;
  std::vector<NetStateSetting> test_state;  // one per test net (test_iter entry), or none

  // Caffe's InitTrainNet/InitTestNets: the phase, then the net's own state, then the
  // solver's state for that net, merged in that order.
  NetState train_net_state(const NetSpec& net) const;
  NetState test_net_state(const NetSpec& net, size_t i) const;
  // One per test_iter entry when the solver tests at all.
  size_t test_nets() const { return test_interval > 0 || !test_iter.empty() ? test_iter.size() : 0; }
  Mark mark;

  // Parses a solver map (every key checked; `net` must already be a map).
  static SolverSpec parse(const Node& root);
};

// Logs what Net::reuse_activation_memory saved, if anything.
void log_memory_plan(const Net::MemoryPlan& plan);

// Says how much of each data layer's source `batches` forward passes of `net` read,
// when that is not exactly one pass: a warning when samples are read twice within
// a pass (a test score that counts some samples twice), a note when some are left
// out. `knob` names what sets `batches` (test_iter, --iterations); `which` the net;
// `scored`: the passes make a score (else their rows are written, as extract-features does).
void note_pass_coverage(const Net& net, int batches, const std::string& knob, const std::string& which,
                        bool scored = true);

// Learning rate after `iter` updates; `current_step` is the multistep/step state.
// With warmup_iter N > 0, iterations before N ramp linearly from warmup_start_lr s
// into the policy: lr = s + (policy(iter) − s)·iter/N. The policy runs underneath
// for every iteration (its step state advances as without warm-up), so the rate
// reaches the policy's own value at iter = N with no jump.
float learning_rate(const SolverSpec& spec, int iter, int* current_step);

// Everything an exact resume needs.
struct SolverState {
  std::string type;
  int iter = 0;
  int current_step = 0;
  // Caffe's layout: K blobs in learnable-parameter order (SGD/Nesterov momentum,
  // AdaGrad/RMSProp's H, AdaDelta's H, Adam's m), then for AdaDelta, Adam and AdamW
  // K more (AdaDelta's D, Adam's v).
  std::vector<Blob> history;
  std::string rng_state;
  std::vector<float> recent_losses;  // smoothing window for the displayed loss
  float smoothed_loss = 0.f;
  int loss_origin = 0;  // iteration the smoothing window started at
  std::map<std::string, std::string> layer_states;  // "train/<layer>", "test0/<layer>"
};

// One row of training metrics: the numbers a display (training row) or a test pass (a
// test row) logs, handed to Solver::on_metrics for the app to write as files. `values`
// come in the order they are logged, and every row of one kind has the same names; a
// value that does not apply to a row (the rate on the final loss line) is empty.
struct MetricsRow {
  int iter = 0;
  int test_net = -1;     // -1: a training row; k ≥ 0: test net #k
  double wall_time = 0;  // seconds since the Unix epoch
  std::vector<std::pair<std::string, std::optional<double>>> values;
};

// The clock of MetricsRow::wall_time: seconds since the Unix epoch.
double unix_seconds();
// "1h05m", "3m20s", "45s": a duration as --time-limit takes it, for messages.
std::string duration_text(double seconds);

class Solver {
 public:
  enum class Action { None, Stop, Snapshot };

  Solver(const SolverSpec& spec, const NetSpec& net_spec, Context& ctx);

  // Trains from the current iteration to max_iter (Caffe's Solve()).
  void solve();
  // Runs `iters` training iterations (Caffe's Step()).
  void step(int iters);
  // Runs every test net once; returns {output name -> mean} of the first test net, or
  // nothing when a stop arrived during the pass (test_interrupted_).
  std::vector<std::pair<std::string, float>> test_all();

  Net& net() { return *net_; }
  Net* test_net(size_t i = 0) { return i < test_nets_.size() ? test_nets_[i].get() : nullptr; }
  const SolverSpec& spec() const { return spec_; }
  int iter() const { return iter_; }
  // A stop request ended solve(): before max_iter (a snapshot to resume from was written),
  // or at max_iter, during the last iteration or the final test pass (iter() tells which).
  bool stopped_early() const { return stopped_early_; }
  // The data layer a stop found waiting for its next batch, "" if none: its reader may be
  // blocked for good (a stalled file system), and waiting for it to end could take for ever.
  const std::string& stopped_waiting_for() const { return stalled_layer_; }
  // Seconds the latest complete test pass (every test net) took; 0 before the first.
  double test_seconds() const { return test_seconds_; }
  // Losses shown at each display (smoothed), for tests.
  const std::vector<std::pair<int, float>>& displayed_losses() const { return displayed_; }

  SolverState state() const;
  // Values of update history a snapshot's solver state holds (for its size on disk).
  long long history_count() const;
  // Throws Error when the state does not fit this solver/net.
  void restore(const SolverState& state);

  // Called when a snapshot is due; the app writes files.
  std::function<void(Solver&)> on_snapshot;
  // Polled after each iteration, between an iteration's passes (iter_size), between test
  // batches and while waiting for data (signal handling).
  std::function<Action()> poll_action;
  // Called with each display's and each test pass's numbers.
  std::function<void(const MetricsRow&)> on_metrics;

 private:
  float apply_update();  // returns the learning rate it used
  // Fills frozen_: the parameters of lr_mult 0 that no history can move, which the update skips.
  void find_frozen();
  void update_smoothed_loss(float loss);
  // A training row with the TRAIN net's current outputs; the caller fills in the rest.
  MetricsRow train_metrics(std::optional<double> lr, std::optional<double> iter_per_s, std::optional<double> data_wait_ms) const;
  void emit(const MetricsRow& row) const;
  void snapshot();
  // The message that stops a run whose loss, gradients or weights stopped being finite
  // (`what`); `stopped` says how far the iteration got.
  std::string diverged(const std::string& what, const std::string& stopped = "Stopped before the update") const;
  // "the loss is not a finite number", with "name = value" of each such loss output.
  std::string non_finite_losses() const;
  // Polls once; a snapshot request is kept in snapshot_requested_ for the iteration's end.
  bool stop_requested();
  // Net::await_data with stop_requested: false (said in the log) when a stop came first.
  bool await_data(Net& net, int batches);
  // Keeps, in iteration_start_, what an iteration's passes (and its test pass, `with_tests`)
  // change besides the gradients they accumulate: the data layers' saved states, the blobs
  // forward updates (Layer::updated_by_forward), the context's RNG.
  void mark_iteration_start(bool with_tests);
  // Puts back what mark_iteration_start kept: the iteration is as if not begun.
  void undo_iteration();
  // After an error in an iteration's test pass or passes: undoes the iteration and
  // snapshots it, unless step() began at it or a snapshot of it exists (a failure to write
  // is logged, not thrown: the error being handled is the one to report).
  void keep_work_before_failure(int began_iter);

  // The nets as an iteration began.
  struct IterationStart {
    Rng rng;
    bool with_tests = false;                       // the test nets were kept too
    std::vector<std::vector<std::string>> states;  // [net][layer]: the TRAIN net, then the test nets
    std::vector<Blob> updated;                     // Layer::updated_by_forward's blobs, in the nets' and layers' order
  };

  SolverSpec spec_;
  Context& ctx_;
  const UpdateRule* rule_;
  std::unique_ptr<Net> net_;
  std::vector<std::unique_ptr<Net>> test_nets_;
  int iter_ = 0;
  int current_step_ = 0;
  std::vector<BlobPtr> history_;
  // [param]: 0, or skipped by the update (kFrozen; kWrittenByForward: a layer's forward writes
  // it, and the update checks it stayed finite); empty until its first update after setup or a restore.
  static constexpr char kFrozen = 1, kWrittenByForward = 2;
  std::vector<char> frozen_;
  std::vector<float> losses_;
  float smoothed_loss_ = 0.f;
  int loss_origin_ = 0;
  bool keep_losses_ = false;
  bool stopped_early_ = false;
  bool test_interrupted_ = false;
  double test_seconds_ = 0;
  bool snapshot_requested_ = false;
  std::string stalled_layer_;
  int snapshot_iter_ = -1;  // of the latest snapshot() in this process
  std::vector<std::pair<int, float>> displayed_;
  IterationStart iteration_start_;
};

}  // namespace crema
