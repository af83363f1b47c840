#include "engine/solver.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <set>
#include <utility>

#include "engine/error.hpp"
#include "engine/math.hpp"
#include "engine/update_rules.hpp"

namespace crema {

namespace {
const std::vector<std::string> kPolicies = {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid", "cosine"};

// Refuses hyper-parameters an update rule cannot work with, at the offending key.
void check_rule_params(MapReader& r, const SolverSpec& s) {
  auto fail_at = [&](const char* key, const std::string& message) {
    if (const Node* n = r.find(key)) n->fail(message);
    r.fail(key, message);  // a default that does not fit: point at the solver map
  };
  auto unit_interval = [&](const char* key, float v, const std::string& what) {
    if (!(v >= 0.f && v < 1.f)) fail_at(key, std::string(key) + " (" + what + ") must lie in [0, 1) for " + s.type);
  };
  const std::string& t = s.type;
  // Caffe stops on these with a CHECK; here they are config errors.
  if ((t == "AdaGrad" || t == "RMSProp") && s.momentum != 0.f)
    fail_at("momentum", "momentum cannot be used with " + t +
                            "; remove it (for one run: --unset momentum), or use type: Adam, whose momentum is beta1");
  if (t == "RMSProp") unit_interval("rms_decay", s.rms_decay, "the decay of the squared-gradient average");
  if (t == "AdaDelta") unit_interval("momentum", s.momentum, "AdaDelta's decay");
  if (t == "Adam" || t == "AdamW") {
    unit_interval("momentum", s.momentum, "beta1");
    unit_interval("momentum2", s.momentum2, "beta2");
  }
  // Momentum is a decay: at 1 or above the velocity never forgets and the steps grow without bound.
  if ((t == "SGD" || t == "Nesterov") && !(s.momentum >= 0.f && s.momentum < 1.f))
    fail_at("momentum", "momentum must lie in [0, 1) for " + t + " (Caffe's nets use 0.9)");
  // δ keeps the adaptive steps finite where a gradient and its history are zero.
  if (t != "SGD" && t != "Nesterov" && !(s.delta > 0.f))
    fail_at("delta", "delta must be positive for " + t + " (it guards the division; Caffe's default is 1e-8)");
}

// The names a metrics row has besides the nets' outputs (the files add iter and wall_time).
const std::vector<std::string> kMetricsColumns = {"iter",         "wall_time", "smoothed_loss", "lr",
                                                  "data_wait_ms", "test_loss", "iter_per_s"};

// Appends a net's outputs (`values`, one per output element, in the log's order) to a
// row: by name, `name[e]` for each element of a multi-element output; a name that is one
// of the row's own gets "output_" in front.
void append_outputs(MetricsRow& row, const Net& net, const std::vector<double>& values) {
  size_t k = 0;
  const auto outs = net.outputs();
  for (size_t j = 0; j < outs.size(); ++j) {
    std::string name = net.output_names()[j];
    if (std::find(kMetricsColumns.begin(), kMetricsColumns.end(), name) != kMetricsColumns.end())
      name = "output_" + name;
    const int count = outs[j]->count();
    for (int e = 0; e < count; ++e, ++k)
      row.values.emplace_back(count > 1 ? name + "[" + std::to_string(e) + "]" : name, values[k]);
  }
}

// A value for a message: "nan", not fmt's "-nan".
std::string number(float v) { return std::isnan(v) ? "nan" : fmt::format("{:.6g}", v); }

// How weights can break while the loss stays finite.
constexpr const char* kHiddenNaN =
    " although the loss was finite (a ReLU or max pooling can hide NaN in the data from it, and a gradient can "
    "overflow where the output does not)";

}  // namespace

std::string duration_text(double seconds) {
  const long long t = std::llround(std::max(0.0, seconds));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

NetState SolverSpec::train_net_state(const NetSpec& net) const {
  return merged(net.state_for(Phase::TRAIN), train_state);
}

NetState SolverSpec::test_net_state(const NetSpec& net, size_t i) const {
  const NetState base = net.state_for(Phase::TEST);
  return i < test_state.size() ? merged(base, test_state[i]) : base;
}

SolverSpec SolverSpec::parse(const Node& root) {
  SolverSpec s;
  MapReader r(&root);
  s.mark = root.mark();
  const Node& net = r.required("net");
  if (!net.is_map()) net.fail("expected the net as a map (or a path to a net file)");
  s.net = &net;
  std::vector<std::string> types;
  for (const UpdateRule& u : update_rules()) types.push_back(u.type);
  const Node* type = r.find("type");
  if (type) s.type = types[static_cast<size_t>(enum_value(*type, types))];
  // Caffe's legacy `solver_type: NESTEROV` enum spelling.
  if (const Node* legacy = r.find("solver_type")) {
    if (type) legacy->fail("both type and the legacy solver_type are set; keep only type: " + s.type);
    s.type = legacy_update_rule(*legacy).type;
  }
  s.base_lr = r.required("base_lr").as_float();
  if (const Node* p = r.find("lr_policy")) s.lr_policy = kPolicies[static_cast<size_t>(enum_value(*p, kPolicies))];
  s.gamma = r.get_float("gamma", 0.f);
  s.power = r.get_float("power", 0.f);
  s.stepsize = r.get_int("stepsize", 0);
  s.stepvalue = r.get_ints("stepvalue");
  s.min_lr = r.get_float("min_lr", 0.f);
  s.warmup_iter = r.get_int("warmup_iter", 0);
  s.warmup_start_lr = r.get_float("warmup_start_lr", 0.f);
  s.momentum = r.get_float("momentum", 0.f);
  s.weight_decay = r.get_float("weight_decay", 0.f);
  s.regularization_type = r.get_string("regularization_type", "L2");
  if (s.regularization_type != "L2" && s.regularization_type != "L1")
    r.find("regularization_type")->fail("unknown regularization_type '" + s.regularization_type + "'; expected L1 or L2");
  s.clip_gradients = r.get_float("clip_gradients", -1.f);
  s.iter_size = r.get_int("iter_size", 1);
  s.delta = r.get_float("delta", 1e-8f);
  s.momentum2 = r.get_float("momentum2", 0.999f);
  s.rms_decay = r.get_float("rms_decay", 0.99f);
  s.max_iter = r.required("max_iter").as_int();
  s.display = r.get_int("display", 0);
  s.average_loss = r.get_int("average_loss", 1);
  s.test_iter = r.get_ints("test_iter");
  for (int v : s.test_iter)
    if (v <= 0) r.fail("test_iter", "each test_iter must be positive (batches per test)");
  s.test_interval = r.get_int("test_interval", 0);
  s.test_initialization = r.get_bool("test_initialization", true);
  s.test_compute_loss = r.get_bool("test_compute_loss", false);
  s.snapshot = r.get_int("snapshot", 0);
  s.snapshot_prefix = r.get_string("snapshot_prefix", "");
  s.snapshot_after_train = r.get_bool("snapshot_after_train", true);
  s.snapshot_diff = r.get_bool("snapshot_diff", false);
  s.snapshot_keep = r.get_int("snapshot_keep", 0);
  if (s.snapshot_keep < 0)
    r.fail("snapshot_keep", "must be 0 (keep every snapshot) or how many of the latest snapshots to keep");
  // Caffe's default is BINARYPROTO, and old solver files spell it out: such a file runs as it is.
  if (const Node* f = r.find("snapshot_format"); f && enum_value(*f, {"HDF5", "BINARYPROTO"}, 0) == 1)
    s.warnings.push_back(f->mark().str() +
                         ": snapshot_format BINARYPROTO: crema writes its snapshots in HDF5 (.caffemodel.h5 and "
                         ".solverstate.h5), which Caffe reads as well; write snapshot_format: HDF5 to say so");
  s.random_seed = r.get_int64("random_seed", -1);
  // The random stream takes 32 bits: a larger seed would run as another one while the log named it.
  if (s.random_seed > 4294967295LL)
    r.fail("random_seed",
           "random_seed must be at most 4294967295 (seeds are 32-bit, as Caffe's); -1 draws one from "
           "the clock");
  if (const Node* m = r.find("solver_mode")) s.solver_mode_mark = m->mark();
  s.solver_mode = r.get_enum("solver_mode", {"CPU", "GPU"}, 0, 0) == 0 ? "CPU" : "GPU";
  if (const Node* d = r.find("device_id")) s.device_id_mark = d->mark();
  s.device_id = r.get_int("device_id", 0);
  // On the CPU the device is not used (in Caffe neither): only a GPU run needs a real number.
  if (s.device_id < 0 && s.solver_mode == "GPU")
    r.fail("device_id", "device_id must be 0 or more (the GPU's number, as crema device lists them)");
  if (const Node* p = r.find("precision")) s.precision_mark = p->mark();
  s.precision = static_cast<Precision>(r.get_enum("precision", precision_names(), 0));
  s.debug_info = r.get_bool("debug_info", false);
  if (const Node* w = r.find("weights")) {
    for (const Node& item : w->is_seq() ? w->items() : std::vector<Node>{*w}) {
      for (std::string& file : split_commas(item.str())) {
        if (file.empty()) continue;
        s.weights.push_back(std::move(file));
        s.weights_marks.push_back(item.mark());
      }
    }
    if (s.weights.empty()) w->fail("weights names no file; give a .caffemodel or leave it out");
  }
  // Caffe's multi-GPU gradient reduction per layer: crema trains on one device, so it has no effect.
  (void)r.get_bool("layer_wise_reduce", true);
  if (const Node* m = r.find("metrics")) {
    // A list of kinds, one kind, or none.
    const std::vector<std::string> kinds = {"csv", "tensorboard", "none"};
    const std::vector<Node> items = m->is_seq() ? m->items() : std::vector<Node>{*m};
    // An empty list would turn the metrics off as silently as a mistake; none says so.
    if (items.empty()) m->fail("metrics: [] lists no kind; write metrics: none to write no metrics files");
    s.metrics_csv = s.metrics_tensorboard = false;
    std::set<int> seen;
    for (const Node& item : items) {
      const int kind = enum_value(item, kinds);
      if (kind == 2 && items.size() > 1) item.fail("metrics: none cannot be combined with other kinds");
      if (!seen.insert(kind).second) item.fail("metrics: " + kinds[static_cast<size_t>(kind)] + " is listed twice");
      s.metrics_csv |= kind == 0;
      s.metrics_tensorboard |= kind == 1;
    }
  }
  MapReader train_state = r.sub("train_state");
  s.train_state = parse_state_setting(train_state);
  // One map (a single test net) or a list of them, one per test_iter entry.
  for (auto& item : r.subs("test_state")) s.test_state.push_back(parse_state_setting(item));
  r.finish();

  // A key the policy needs: where it is missing, the error points at lr_policy.
  auto positive = [&](const char* key, double v) {
    if (v > 0) return;
    if (!r.find(key))
      r.fail("lr_policy",
             "lr_policy " + s.lr_policy + " needs " + key + " (a positive number)" +
                 (s.lr_policy == "step" && !s.stepvalue.empty() ? "; stepvalue is for lr_policy multistep" : ""));
    r.fail(key, std::string(key) + " must be positive");
  };
  if (!(s.base_lr >= 0.f && std::isfinite(s.base_lr)))
    r.fail("base_lr", "base_lr must be a finite number >= 0 (Caffe's nets mostly use 0.001 to 0.1)");
  if (!(s.weight_decay >= 0.f && std::isfinite(s.weight_decay)))
    r.fail("weight_decay", "weight_decay must be a finite number >= 0 (0 switches it off; Caffe's nets use 0.0005)");
  if (s.display < 0) r.fail("display", "display must not be negative (0: no loss lines)");
  if (const Node* p = r.find("snapshot_prefix")) {
    s.snapshot_prefix_mark = p->mark();
    if (s.snapshot_prefix.empty())
      p->fail(
          "snapshot_prefix is empty; give a path prefix such as runs/lenet (or remove the key for the solver "
          "file's name)");
    for (const char c : s.snapshot_prefix)  // it names files: a control character would be in every one
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        p->fail("snapshot_prefix holds a control character; use printable characters");
    if (s.snapshot_prefix[0] == '~')  // a folder literally named "~" would be made
      p->fail("snapshot_prefix '" + s.snapshot_prefix +
              "' starts with '~', which only a shell expands, not a config; write the whole path (or one relative to "
              "the working directory)");
  }
  if (s.max_iter < 0) r.fail("max_iter", "max_iter must not be negative");
  if (s.iter_size < 1) r.fail("iter_size", "iter_size must be at least 1");
  if (s.average_loss < 1) r.fail("average_loss", "average_loss must be at least 1");
  if (s.lr_policy == "step") positive("stepsize", s.stepsize), positive("gamma", s.gamma);
  if (s.lr_policy == "exp" || s.lr_policy == "inv" || s.lr_policy == "multistep") positive("gamma", s.gamma);
  if (s.lr_policy == "multistep" && s.stepvalue.empty())
    r.fail(r.find("lr_policy") ? "lr_policy" : "stepvalue",
           std::string("lr_policy multistep needs stepvalue (the iterations where the rate is multiplied by gamma)") +
               (r.find("stepsize") ? "; stepsize is for lr_policy step" : ""));
  // Caffe reads a missing power or gamma as 0, which makes inv and poly a fixed rate and
  // sigmoid half of base_lr throughout: never what such a policy was written for.
  if (s.lr_policy == "inv" || s.lr_policy == "poly") positive("power", s.power);
  if (s.lr_policy == "sigmoid") {
    if (!r.find("gamma") || !r.find("stepsize"))
      r.fail("lr_policy", std::string("lr_policy sigmoid needs ") + (r.find("gamma") ? "stepsize" : "gamma") +
                              " (gamma < 0 for a falling rate, centred at iteration stepsize)");
    if (s.gamma == 0.f) r.fail("gamma", "gamma must not be 0 for lr_policy sigmoid (it would be base_lr/2 throughout)");
  }
  if ((s.lr_policy == "poly" || s.lr_policy == "cosine") && s.max_iter == 0)
    r.fail("max_iter", "lr_policy " + s.lr_policy + " needs max_iter > 0");
  if (const Node* m = r.find("min_lr")) {
    if (s.lr_policy != "cosine")
      m->fail(
          "min_lr is the floor of lr_policy cosine; remove it (for one run: --unset min_lr) or use lr_policy: cosine");
    if (s.min_lr < 0.f || s.min_lr > s.base_lr) m->fail("min_lr must lie between 0 and base_lr");
  }
  if (s.warmup_iter < 0) r.find("warmup_iter")->fail("warmup_iter must not be negative");
  if (const Node* w = r.find("warmup_start_lr")) {
    if (s.warmup_iter == 0) w->fail("warmup_start_lr needs warmup_iter (the number of warm-up iterations)");
    if (s.warmup_start_lr < 0.f) w->fail("warmup_start_lr must not be negative");
    if (s.warmup_start_lr > s.base_lr)
      s.warnings.push_back(w->mark().str() + ": warmup_start_lr " + fmt::format("{:g}", s.warmup_start_lr) +
                           " is above base_lr " + fmt::format("{:g}", s.base_lr) +
                           ": the warm-up lowers the rate to base_lr instead of raising it to it");
  }
  check_rule_params(r, s);
  for (size_t i = 0; i < s.stepvalue.size(); ++i)
    if (s.stepvalue[i] < 0) {
      const std::string why = "stepvalue " + std::to_string(s.stepvalue[i]) +
                              " is negative: step values are the iterations where the rate is multiplied by gamma";
      const Node* list = r.find("stepvalue");
      if (list && list->is_seq() && i < list->items().size()) list->items()[i].fail(why);
      r.fail("stepvalue", why);
    }
  for (size_t i = 1; i < s.stepvalue.size(); ++i)
    if (s.stepvalue[i] <= s.stepvalue[i - 1]) {
      // At the item, so that the value to change is pointed at (in a --set too).
      const std::string why = "stepvalue must be increasing, and " + std::to_string(s.stepvalue[i]) + " follows " +
                              std::to_string(s.stepvalue[i - 1]);
      const Node* list = r.find("stepvalue");
      if (list && list->is_seq() && i < list->items().size()) list->items()[i].fail(why);
      r.fail("stepvalue", why);
    }
  if (s.test_interval < 0) r.fail("test_interval", "test_interval must not be negative");
  if (s.snapshot < 0) r.fail("snapshot", "snapshot must not be negative");
  if (const Node* ti = r.find("test_iter")) s.test_iter_mark = ti->mark();
  if (s.test_interval > 0 && s.test_iter.empty())
    r.fail("test_interval", "test_interval is set, so test_iter (batches per test) is required");
  // Keys the policy or the update rule does not read, which Caffe ignores: a policy misremembered
  // (stepvalue with step) trains at a rate nobody meant, so each is said once at the start.
  static const std::map<std::string, std::vector<std::string>> kPolicyKeys = {{"fixed", {}},
                                                                              {"step", {"stepsize", "gamma"}},
                                                                              {"exp", {"gamma"}},
                                                                              {"inv", {"gamma", "power"}},
                                                                              {"multistep", {"stepvalue", "gamma"}},
                                                                              {"poly", {"power"}},
                                                                              {"sigmoid", {"gamma", "stepsize"}},
                                                                              {"cosine", {}}};
  if (const auto it = kPolicyKeys.find(s.lr_policy); it != kPolicyKeys.end())
    for (const char* key : {"gamma", "power", "stepsize", "stepvalue"})
      if (r.find(key) && std::find(it->second.begin(), it->second.end(), key) == it->second.end())
        s.warnings.push_back(r.find(key)->mark().str() + ": " + key + " is not used by lr_policy " + s.lr_policy +
                             ", and is ignored (remove it, or give the policy that reads it)");
  const std::string& t = s.type;
  for (const auto& [key, used] : {std::pair<const char*, bool>{"momentum2", t == "Adam" || t == "AdamW"},
                                  {"rms_decay", t == "RMSProp"},
                                  {"delta", t != "SGD" && t != "Nesterov"}})
    if (!used && r.find(key))
      s.warnings.push_back(r.find(key)->mark().str() + ": " + key + " is not used by type " + t +
                           ", and is ignored (remove it, or give the type that reads it)");
  if ((s.lr_policy == "step" || s.lr_policy == "multistep" || s.lr_policy == "exp") && s.gamma > 1.f)
    s.warnings.push_back(fmt::format("gamma {} is above 1: lr_policy {} multiplies the rate by it, so the rate grows",
                                     s.gamma, s.lr_policy));
  if (s.lr_policy == "multistep" && !s.stepvalue.empty() && s.stepvalue.front() >= s.max_iter && s.max_iter > 0)
    s.warnings.push_back(
        fmt::format("stepvalue {} is not before max_iter {}: the rate never drops", s.stepvalue.front(), s.max_iter));
  if (s.lr_policy == "step" && s.stepsize >= s.max_iter && s.max_iter > 0)
    s.warnings.push_back(
        fmt::format("stepsize {} is not below max_iter {}: the rate never drops", s.stepsize, s.max_iter));
  if (!s.test_state.empty() && s.test_state.size() != s.test_iter.size())
    r.fail("test_state", "test_state has " + std::to_string(s.test_state.size()) + " entr" +
                             (s.test_state.size() == 1 ? "y" : "ies") + " but test_iter has " +
                             std::to_string(s.test_iter.size()) +
                             " (one per test net); give one test_state per test_iter value, or none");
  return s;
}

namespace {
// The policy's rate before any warm-up.
double policy_rate(const SolverSpec& s, int iter, int* current_step) {
  const double base = s.base_lr, it = iter;
  if (s.lr_policy == "fixed") return base;
  if (s.lr_policy == "step") {
    *current_step = iter / s.stepsize;
    return base * std::pow(static_cast<double>(s.gamma), *current_step);
  }
  if (s.lr_policy == "exp") return base * std::pow(static_cast<double>(s.gamma), it);
  if (s.lr_policy == "inv")
    return base * std::pow(1.0 + static_cast<double>(s.gamma) * it, -static_cast<double>(s.power));
  if (s.lr_policy == "multistep") {
    // Advances at most one step value per iteration, as Caffe does.
    if (*current_step < static_cast<int>(s.stepvalue.size()) && iter >= s.stepvalue[static_cast<size_t>(*current_step)])
      ++*current_step;
    return base * std::pow(static_cast<double>(s.gamma), *current_step);
  }
  if (s.lr_policy == "poly") return base * std::pow(1.0 - it / s.max_iter, static_cast<double>(s.power));
  if (s.lr_policy == "sigmoid") return base / (1.0 + std::exp(-static_cast<double>(s.gamma) * (it - s.stepsize)));
  if (s.lr_policy == "cosine") {
    // Half a cosine from base_lr down to min_lr at max_iter, where it stays.
    const double floor = s.min_lr, progress = std::min(it, static_cast<double>(s.max_iter)) / s.max_iter;
    return floor + (base - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  throw Error("unknown lr_policy '" + s.lr_policy + "'");
}
}  // namespace

float learning_rate(const SolverSpec& s, int iter, int* current_step) {
  const double rate = policy_rate(s, iter, current_step);
  if (iter >= s.warmup_iter) return static_cast<float>(rate);
  const double start = s.warmup_start_lr;
  return static_cast<float>(start + (rate - start) * iter / s.warmup_iter);
}

void log_memory_plan(const Net::MemoryPlan& plan) {
  if (plan.bytes_after == plan.bytes_before) return;
  spdlog::info("Activation memory: {:.1f} MB, blobs sharing {} buffers ({:.1f} MB without sharing)",
               static_cast<double>(plan.bytes_after) / (1 << 20), plan.buffers,
               static_cast<double>(plan.bytes_before) / (1 << 20));
}

namespace {
// A layer reading a source of known size, and its batch.
struct SourcedBatch {
  std::string layer;  // "layer 'name' (file:line:column)"
  int64_t samples, batch;
};

std::vector<SourcedBatch> sourced_batches(const Net& net) {
  std::vector<SourcedBatch> found;
  for (int i = 0; i < net.num_layers(); ++i) {
    const int64_t samples = net.layer(i).source_size();
    if (samples <= 0 || net.top_vec(i).empty() || net.top_vec(i)[0]->num_axes() == 0) continue;
    found.push_back({"layer '" + net.layer_name(i) + "' (" + net.layer(i).spec().mark.str() + ")", samples,
                     net.top_vec(i)[0]->shape(0)});
  }
  return found;
}
}  // namespace

void note_pass_coverage(const Net& net, int batches, const std::string& knob, const std::string& which, bool scored) {
  for (const auto& [layer, samples, batch] : sourced_batches(net)) {
    const int64_t read = batch * batches;
    if (read == samples) continue;
    const bool fits = samples % batch == 0;  // a count of batches that reads each sample once
    if (read > samples && read % samples == 0 && scored) {
      // Every sample read equally often: the scores are the data set's, only slower.
      spdlog::info("{}: {} {} x batch_size {} reads each of the {} samples of {} {} times per pass", which, knob,
                   batches, batch, samples, layer, read / samples);
    } else if (read > samples && read % samples == 0) {
      // Written, each repeat is a row of its own: a data set made of them holds every sample k times.
      spdlog::warn(
          "{}: {} {} x batch_size {} reads each of the {} samples of {} {} times, so each is written {} times; "
          "{}",
          which, knob, batches, batch, samples, layer, read / samples, read / samples,
          fits ? "set " + knob + " " + std::to_string(samples / batch) + " to write each once"
               : "a batch_size that divides " + std::to_string(samples) + ", with " + knob + " " +
                     std::to_string(samples) + " / batch_size, writes each once");
    } else if (read > samples) {
      // Caffe's classic trap: the data wraps round within the pass, so the score
      // counts the first samples twice and is not the data set's.
      const std::string advice = batch <= samples ? knob + " " + std::to_string(samples / batch) + " (" +
                                                        std::to_string(samples / batch * batch) + " samples)"
                                                  : "a batch_size of " + std::to_string(samples) + " or less";
      spdlog::warn(
          "{}: {} {} x batch_size {} = {} samples per pass, but {} holds {}: the pass goes round the data {:.6g} "
          "times, so {}; set {} to read each at most once",
          which, knob, batches, batch, read, layer, samples, static_cast<double>(read) / static_cast<double>(samples),
          scored ? "some samples weigh more than others in its scores" : "some samples are written more than once",
          advice);
    } else if (scored) {
      spdlog::info("{}: {} {} x batch_size {} reads {} of the {} samples of {} per pass", which, knob, batches, batch,
                   read, samples, layer);
    } else if (!fits) {
      spdlog::info("{}: {} {} x batch_size {} writes {} of the {} samples of {}", which, knob, batches, batch, read,
                   samples, layer);
    } else {
      spdlog::info("{}: {} {} x batch_size {} writes {} of the {} samples of {} ({} {} writes them all)", which, knob,
                   batches, batch, read, samples, layer, knob, samples / batch);
    }
  }
}

Solver::Solver(const SolverSpec& spec, const NetSpec& net_spec, Context& ctx)
    : spec_(spec), ctx_(ctx), rule_(&update_rule(spec.type)) {
  spdlog::info("Creating training net");
  net_ = std::make_unique<Net>(net_spec, spec_.train_net_state(net_spec), ctx_);
  if (spec_.debug_info) net_->set_debug_info(true);  // the TRAIN net only, as Caffe
  net_->refuse_size_following_outputs("training");
  // Caffe trains such a net, changing nothing, for as long as it is told to.
  // (A net whose parameters are all frozen, e.g. one refreshing BatchNorm's statistics, is fine.)
  // Without a loss only a net whose layers keep statistics (BatchNorm, its lr_mult 0) has a
  // use in training; one with no parameters at all would only log a column of zero losses.
  bool has_loss = false, learns = false;
  for (int i = 0; i < net_->num_layers(); ++i)
    for (size_t j = 0; j < net_->top_vec(i).size(); ++j)
      has_loss |= net_->layer(i).loss_weight(static_cast<int>(j)) != 0.f;
  for (float lr : net_->params_lr()) learns |= lr != 0.f;
  if (!has_loss && (learns || net_->learnable_params().empty())) {
    std::vector<std::string> weighed_nothing;  // loss layers, all at loss_weight 0
    for (int i = 0; i < net_->num_layers(); ++i)
      if (std::string(net_->layer(i).type()).ends_with("Loss")) weighed_nothing.push_back(net_->layer_name(i));
    if (!weighed_nothing.empty())
      throw ConfigError(net_->layer_by_name(weighed_nothing[0])->spec().mark, "net",
                        "every loss of the TRAIN net '" + net_->name() + "' (" +
                            fmt::format("'{}'", fmt::join(weighed_nothing, "', '")) +
                            ") has loss_weight 0, so training would change no weight; give one a positive loss_weight");
    // A loss the state's rules leave out (a --stage deploy, a train_state stage): that is the slip to name.
    std::vector<std::string> left_out;
    const NetState state = spec_.train_net_state(net_spec);
    const NetState plain{Phase::TRAIN, 0, {}};  // what the stages and level leave out, not a TEST-only loss
    for (const LayerSpec& l : net_spec.layers)
      if (l.type.ends_with("Loss") && layer_included(l, plain) && !layer_included(l, state)) left_out.push_back(l.name);
    std::string stages;
    for (const std::string& stage : state.stage) stages += (stages.empty() ? "" : ", ") + stage;
    if (state.stage.size() == 1) stages = "stage " + stages;
    if (state.stage.size() > 1) stages = "stages " + stages;
    if (!left_out.empty())
      throw ConfigError(spec_.net ? spec_.net->key_mark() : spec_.mark, "net",
                        "the TRAIN net '" + net_->name() + "' has no loss: its include/exclude rules leave out " +
                            fmt::format("'{}'", fmt::join(left_out, "', '")) + " in the TRAIN state (level " +
                            std::to_string(state.level) + (stages.empty() ? ", no stage" : ", " + stages) +
                            "), so training would change no weight; check train_state and --stage/--level");
    throw ConfigError(spec_.net ? spec_.net->key_mark() : spec_.mark, "net",
                      "the TRAIN net '" + net_->name() +
                          "' has no loss (no top with a loss weight), so training would change no weight; add a loss "
                          "layer such as SoftmaxWithLoss to the TRAIN phase, or give a top a loss_weight");
  }
  for (size_t t = 0; t < spec_.test_nets(); ++t) {
    spdlog::info("Creating test net (#{})", t);
    auto test = std::make_unique<Net>(net_spec, spec_.test_net_state(net_spec, t), ctx_);
    test->refuse_size_following_outputs("training's test pass");
    test->share_weights_from(*net_);
    log_memory_plan(test->reuse_activation_memory());
    if (spec_.test_interval > 0)  // else the test nets never run (warned below)
      note_pass_coverage(*test, spec_.test_iter[t], "test_iter", "test net #" + std::to_string(t));
    test_nets_.push_back(std::move(test));
  }
  // Every output value is logged at each display or test and is a metrics column: a top left
  // dangling (an embedding nothing reads) fills both with a line and a column per value.
  const auto note_large_outputs = [](const Net& net, const std::string& which) {
    const auto outs = net.outputs();
    for (size_t j = 0; j < outs.size(); ++j)
      if (outs[j]->count() > 100)
        spdlog::warn(
            "{} output '{}' holds {} values, each logged at every display or test pass and each a metrics column; "
            "if nothing is meant to read it, end it in a Silence layer (bottom: {})",
            which, net.output_names()[j], outs[j]->count(), net.output_names()[j]);
  };
  note_large_outputs(*net_, "The TRAIN net's");
  for (size_t t = 0; t < test_nets_.size() && spec_.test_interval > 0; ++t)
    note_large_outputs(*test_nets_[t], "Test net #" + std::to_string(t) + "'s");
  // Caffe's layout: a full set of K blobs per history kind, one after the other.
  for (int h = 0; h < rule_->histories; ++h)
    for (const Blob* p : net_->learnable_params()) history_.push_back(std::make_shared<Blob>(p->shape()));
  if (!spec_.test_iter.empty() && spec_.test_interval == 0)
    spdlog::warn(
        "{}: test_iter is set but test_interval is 0 or not set, so the test nets never run; set test_interval "
        "(training iterations between test passes) to test",
        spec_.test_iter_mark.str());
  for (const auto& [layer, samples, batch] : sourced_batches(*net_))
    if (batch > samples)
      spdlog::warn(
          "{}: batch_size {} is larger than the {} samples of its source, so every batch holds some samples more "
          "than once; use a batch_size of {} or less",
          layer, batch, samples, samples);
  if (spec_.snapshot == 0 && !spec_.snapshot_after_train)
    spdlog::warn(
        "snapshot is 0 and snapshot_after_train is false, so this run writes no weights (only a stop by "
        "Ctrl-C or SIGTERM does); set snapshot: N or snapshot_after_train: true to keep what it learns");
  spdlog::info("Solver scaffolding done.");
}

void Solver::update_smoothed_loss(float loss) {
  // Caffe's running mean over the last average_loss iterations.
  const size_t window = static_cast<size_t>(spec_.average_loss);
  if (losses_.size() < window) {
    losses_.push_back(loss);
    const size_t n = losses_.size();
    smoothed_loss_ = (smoothed_loss_ * static_cast<float>(n - 1) + loss) / static_cast<float>(n);
  } else {
    const size_t idx = static_cast<size_t>(iter_ - loss_origin_) % window;
    smoothed_loss_ += (loss - losses_[idx]) / static_cast<float>(window);
    losses_[idx] = loss;
  }
}

void Solver::step(int iters) {
  const int stop_iter = iter_ + iters;
  if (!keep_losses_) {
    losses_.clear();
    smoothed_loss_ = 0;
    loss_origin_ = iter_;
  }
  keep_losses_ = false;
  auto tick = std::chrono::steady_clock::now();
  int tick_iter = iter_;
  double tick_wait = net_->data_stats().wait_seconds;
  // For the time left: the pace since this call began, test passes and snapshots included.
  const auto began = tick;
  const int began_iter = iter_;
  while (iter_ < stop_iter) {
    // Before anything of the iteration is done: a stop that comes while a reader is stuck
    // then snapshots this iteration exactly, nothing of its data taken (a resume reads it).
    // One that came while the previous iteration's snapshot was written (seconds for a large
    // net) stops here too, its data ready or not: running one more iteration and writing a
    // second snapshot would eat the scheduler's grace period.
    if (stop_requested() || !await_data(*net_, spec_.iter_size)) {
      if (snapshot_iter_ != iter_) snapshot();  // the previous iteration's end may have written it
      stopped_early_ = true;
      break;
    }
    UpdateOps(ctx_).clear_param_diffs(*net_);
    // What the iteration's test pass and passes change, kept before them. An iteration of
    // several passes can outlast a scheduler's grace period after SIGTERM (iter_size 16 of a
    // large net: minutes), and a later pass's batch can be held by a stuck reader, so a stop
    // is honoured between passes too; and an error in them (a bad sample under
    // on_bad_sample: fail, a label out of range, an image the net cannot take) leaves the
    // weights as the iteration found them. Either way the iteration is undone and the
    // snapshot is of it not begun, which a resume runs whole, as an uninterrupted run.
    const bool testing =
        spec_.test_interval > 0 && iter_ % spec_.test_interval == 0 && (iter_ > 0 || spec_.test_initialization);
    mark_iteration_start(testing);
    const bool display = spec_.display > 0 && iter_ % spec_.display == 0;
    std::optional<double> iter_per_s, data_wait_ms;  // for the display's metrics row
    float loss = 0;
    int pass = 0;
    bool test_stopped = false;
    try {
      if (testing) {
        test_all();
        test_stopped = test_interrupted_;
      }
      for (; !test_stopped && pass < spec_.iter_size; ++pass) {
        if (pass > 0 && (stop_requested() || !await_data(*net_, 1))) break;
        loss += net_->forward_backward(ctx_);
      }
    } catch (const Error&) {
      keep_work_before_failure(began_iter);
      throw;
    }
    if (test_stopped) {
      // The weights are those of iteration iter_ and the test nets are back at the pass's
      // start, so a resumed run tests again and goes on exactly as an uninterrupted one
      // (the snapshot the previous iteration's end wrote, if it did, is that one).
      if (snapshot_iter_ != iter_) snapshot();
      stopped_early_ = true;
      break;
    }
    if (pass < spec_.iter_size) {
      spdlog::warn(
          "Stopped in iteration {} after {} of its {} passes (iter_size): the iteration is undone, and the "
          "resumed run does it whole",
          iter_, pass, spec_.iter_size);
      undo_iteration();
      if (snapshot_iter_ != iter_) snapshot();  // the previous iteration's end may have written it
      stopped_early_ = true;
      break;
    }
    loss /= static_cast<float>(spec_.iter_size);
    // Once the loss is NaN or infinite every gradient is too, and an update would make every
    // weight NaN: the run cannot recover, so it stops before the update, leaving the
    // snapshots already written as they are.
    if (!std::isfinite(loss)) throw Diverged(diverged(non_finite_losses()));
    update_smoothed_loss(loss);
    if (display) {
      const auto now = std::chrono::steady_clock::now();
      const double secs = std::chrono::duration<double>(now - tick).count();
      const int done = iter_ - tick_iter;
      const Layer::DataStats data = net_->data_stats();
      if (done > 0) {
        // How long the steps waited for their batches: near 0 when the prefetcher keeps up.
        const double wait_ms = 1000 * (data.wait_seconds - tick_wait) / done;
        iter_per_s = done / secs;
        data_wait_ms = wait_ms;
        const double per_iter = std::chrono::duration<double>(now - began).count() / (iter_ - began_iter);
        spdlog::info(
            "Iteration {} ({:.4g} iter/s, {:.3f}s/{} iters, data wait {:.3g} ms/iter{}, {} left), loss = {:.6g}", iter_,
            done / secs, secs, done, wait_ms,
            data.bad_samples > 0 ? fmt::format(", {} bad samples skipped", data.bad_samples) : "",
            duration_text(per_iter * (stop_iter - iter_)), smoothed_loss_);
      } else {
        spdlog::info("Iteration {}, loss = {:.6g}", iter_, smoothed_loss_);
      }
      tick = now;
      tick_iter = iter_;
      tick_wait = data.wait_seconds;
      displayed_.emplace_back(iter_, smoothed_loss_);
      int k = 0;
      const auto outs = net_->outputs();
      for (size_t j = 0; j < outs.size(); ++j) {
        const float w = net_->output_loss_weight(j);
        for (int e = 0; e < outs[j]->count(); ++e, ++k) {
          const float v = outs[j]->cpu_data()[e];
          if (w != 0.f)
            spdlog::info("    Train net output #{}: {} = {:.6g} (* {:.6g} = {:.6g} loss)", k, net_->output_names()[j], v, w, w * v);
          else
            spdlog::info("    Train net output #{}: {} = {:.6g}", k, net_->output_names()[j], v);
        }
      }
    }
    const float rate = apply_update();
    if (display) emit(train_metrics(rate, iter_per_s, data_wait_ms));
    ++iter_;
    const bool stop = stop_requested();
    if ((spec_.snapshot > 0 && iter_ % spec_.snapshot == 0) || stop || std::exchange(snapshot_requested_, false))
      snapshot();
    if (stop) {
      stopped_early_ = true;
      break;
    }
  }
}

void Solver::solve() {
  spdlog::info("Solving {}", net_->name());
  spdlog::info("Learning Rate Policy: {}", spec_.lr_policy);
  // Caffe's default, which leaves a run without a single loss line until it ends.
  if (spec_.display == 0)
    spdlog::info(
        "display is 0 (the default): the training loss is not logged and no train metrics rows are written; "
        "display: N logs them every N iterations");
  // As Caffe: the start is tested and snapshotted, which is how a model is scored as it starts.
  if (spec_.max_iter == 0 && iter_ == 0) {
    const bool tested = spec_.test_interval > 0 && !test_nets_.empty(), kept = spec_.snapshot_after_train;
    spdlog::info("max_iter is 0: nothing is trained{}", tested && kept
                                                            ? "; the weights are tested and kept as they start"
                                                        : tested ? "; the weights are tested as they start"
                                                        : kept   ? "; the weights are kept as they start"
                                                                 : "");
  }
  // Caffe's defaults that differ from what the names promise elsewhere (PyTorch's betas).
  if ((spec_.type == "Adam" || spec_.type == "AdamW") && spec_.momentum == 0.f && iter_ == 0)
    spdlog::warn(
        "{} with momentum (beta1) 0, Caffe's default when it is not given: no moving average of the gradients. "
        "Adam is usually run with momentum: 0.9 (PyTorch's betas[0])",
        spec_.type);
  if (iter_ == 0)
    for (const std::string& w : spec_.warnings) spdlog::warn("{}", w);
  if (spec_.warmup_iter > spec_.max_iter)
    spdlog::warn("warmup_iter {} is beyond max_iter {}: the rate never reaches base_lr", spec_.warmup_iter,
                 spec_.max_iter);
  stopped_early_ = false;
  step(spec_.max_iter - iter_);
  if (stopped_early_) {
    spdlog::info("Optimization stopped early at iteration {}.", iter_);
    return;
  }
  if (spec_.snapshot_after_train && snapshot_iter_ != iter_) snapshot();  // not twice (a periodic one, a SIGHUP)
  // The final test before the final loss line (Caffe has them the other way round): that
  // line's extra TRAIN forward moves BatchNorm's running statistics, and the scores must be
  // those of the snapshot just written, as `crema test` on it gives.
  if (spec_.test_interval > 0 && iter_ % spec_.test_interval == 0) {
    test_all();
    // Training is complete; only these scores are lost, and the caller says how to get them.
    // A stop always leaves a checkpoint: the final weights are written now if
    // snapshot_after_train did not write them.
    if (test_interrupted_) {
      if (snapshot_iter_ != iter_) snapshot();
      stopped_early_ = true;
      return;
    }
  }
  // A SIGHUP seen during the final snapshot or test pass: there is no next iteration to
  // write it after.
  if (std::exchange(snapshot_requested_, false) && snapshot_iter_ != iter_) snapshot();
  if (spec_.display > 0 && iter_ % spec_.display == 0 && await_data(*net_, 1)) {
    // One more forward to report the final training loss, smoothed, as Caffe does.
    update_smoothed_loss(net_->forward(ctx_));
    spdlog::info("Iteration {}, loss = {:.6g}", iter_, smoothed_loss_);
    emit(train_metrics(std::nullopt, std::nullopt, std::nullopt));
  }
  int64_t bad = net_->data_stats().bad_samples;
  for (const auto& t : test_nets_) bad += t->data_stats().bad_samples;
  if (bad > 0) spdlog::warn("{} bad sample(s) were skipped (each named in a warning above)", bad);
  spdlog::info("Optimization Done.");
}

bool Solver::await_data(Net& net, int batches) {
  const auto began = std::chrono::steady_clock::now();
  const std::string layer = net.await_data(batches, [this] { return stop_requested(); });
  if (layer.empty()) return true;
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  spdlog::warn(
      "Stopped at iteration {} while data layer '{}'{} waited {:.1f} s for its next batch{}", iter_, layer,
      net.phase() == Phase::TEST ? " of a test net" : "", waited,
      waited >= 1 ? " (a reader this slow may be stuck: a stalled network file system, a FIFO with no writer)" : "");
  stalled_layer_ = layer;
  return false;
}

namespace {
// Each layer's Layer::save_state, in layer order.
std::vector<std::string> layer_states(const Net& net) {
  std::vector<std::string> states;
  for (int i = 0; i < net.num_layers(); ++i) states.push_back(net.layer(i).save_state());
  return states;
}

void restore_layer_states(Net& net, const std::vector<std::string>& states) {
  for (int i = 0; i < net.num_layers(); ++i)
    if (!states[static_cast<size_t>(i)].empty()) net.layer(i).restore_state(states[static_cast<size_t>(i)]);
}
}  // namespace

void Solver::mark_iteration_start(bool with_tests) {
  // Small beside an iteration: the data layers' reader positions and RNG states (host
  // strings), device copies of BatchNorm's per-channel statistics and of recurrent layers'
  // carried state, so nothing crosses the bus.
  IterationStart& start = iteration_start_;
  start.rng = ctx_.rng();  // a copy: formatting its state as text every iteration would cost more
  start.with_tests = with_tests;
  start.states.clear();
  const UpdateOps ops(ctx_);
  size_t k = 0;
  const auto keep = [&](Net& net) {
    std::vector<std::string>& states = start.states.emplace_back();
    for (int i = 0; i < net.num_layers(); ++i) {
      states.push_back(net.layer(i).is_data() ? net.layer(i).save_state() : std::string());
      for (Blob* b : net.layer(i).updated_by_forward()) {
        if (k == start.updated.size()) start.updated.emplace_back();
        ops.copy(*b, start.updated[k++]);
      }
    }
  };
  keep(*net_);
  if (with_tests)
    for (const auto& t : test_nets_) keep(*t);
}

void Solver::undo_iteration() {
  const IterationStart& start = iteration_start_;
  ctx_.rng() = start.rng;
  const UpdateOps ops(ctx_);
  size_t k = 0, n = 0;
  const auto put_back = [&](Net& net) {
    restore_layer_states(net, start.states[n++]);
    for (int i = 0; i < net.num_layers(); ++i)
      for (Blob* b : net.layer(i).updated_by_forward()) ops.copy(start.updated[k++], *b);
  };
  put_back(*net_);
  if (start.with_tests)
    for (const auto& t : test_nets_) put_back(*t);
  // The passes' partial sums would otherwise be what a snapshot_diff snapshot holds.
  ops.clear_param_diffs(*net_);
}

void Solver::keep_work_before_failure(int began_iter) {
  // Nothing to keep: this run has trained nothing yet (it started here, from a snapshot or
  // afresh), or the previous iteration's end wrote this snapshot.
  if (iter_ == began_iter || snapshot_iter_ == iter_) return;
  try {
    undo_iteration();
    snapshot();
    spdlog::warn(
        "Wrote a snapshot of iteration {} as it began, to resume from once the cause of the error below is "
        "fixed",
        iter_);
  } catch (const std::exception& e) {  // a full disk, a device that failed: the error below is the one to report
    spdlog::warn("Could not write a snapshot of iteration {} before the error below: {}", iter_, e.what());
  }
}

bool Solver::stop_requested() {
  const Action action = poll_action ? poll_action() : Action::None;
  if (action == Action::Snapshot) snapshot_requested_ = true;
  return action == Action::Stop;
}

std::vector<std::pair<std::string, float>> Solver::test_all() {
  std::vector<std::pair<std::string, float>> first;
  std::vector<MetricsRow> rows;  // emitted once every test net has finished: a pass counts whole or not at all
  test_interrupted_ = false;
  const auto began = std::chrono::steady_clock::now();
  // A long test pass must not outlast a scheduler's grace period after SIGTERM, so a stop
  // is honoured between batches; the nets' starting points are kept to rewind to.
  std::vector<std::vector<std::string>> start_states;
  for (const auto& t : test_nets_) start_states.push_back(layer_states(*t));
  const std::string start_rng = ctx_.rng().state();
  for (size_t t = 0; t < test_nets_.size(); ++t) {
    Net& test = *test_nets_[t];
    spdlog::info("Iteration {}, Testing net (#{})", iter_, t);
    const int n = spec_.test_iter[t];
    std::vector<double> scores;
    double loss = 0;
    for (int i = 0; i < n; ++i) {
      if (((i > 0 || t > 0) && stop_requested()) || !await_data(test, 1)) {
        spdlog::warn("Test pass of net #{} interrupted after {} of {} batches; no scores reported", t, i, n);
        for (size_t u = 0; u < test_nets_.size(); ++u) restore_layer_states(*test_nets_[u], start_states[u]);
        ctx_.rng().set_state(start_rng);
        test_interrupted_ = true;
        return {};
      }
      loss += test.forward(ctx_);
      size_t k = 0;
      for (Blob* out : test.outputs())
        for (int e = 0; e < out->count(); ++e, ++k) {
          if (scores.size() <= k) scores.push_back(0.0);
          scores[k] += out->cpu_data()[e];
        }
    }
    if (spec_.test_compute_loss) spdlog::info("Test loss: {:.6g}", loss / n);
    MetricsRow row{iter_, static_cast<int>(t), unix_seconds(), {}};
    if (spec_.test_compute_loss) row.values.emplace_back("test_loss", loss / n);
    std::vector<double> means;
    size_t k = 0;
    const auto outs = test.outputs();
    for (size_t j = 0; j < outs.size(); ++j) {
      const float w = test.output_loss_weight(j);
      for (int e = 0; e < outs[j]->count(); ++e, ++k) {
        const float mean = static_cast<float>(scores[k] / n);
        means.push_back(mean);
        if (t == 0) first.emplace_back(test.output_names()[j], mean);
        if (w != 0.f)
          spdlog::info("    Test net output #{}: {} = {:.6g} (* {:.6g} = {:.6g} loss)", k, test.output_names()[j], mean, w, w * mean);
        else
          spdlog::info("    Test net output #{}: {} = {:.6g}", k, test.output_names()[j], mean);
      }
    }
    append_outputs(row, test, means);
    rows.push_back(std::move(row));
  }
  for (const MetricsRow& row : rows) emit(row);
  test_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  return first;
}

MetricsRow Solver::train_metrics(std::optional<double> lr, std::optional<double> iter_per_s,
                                 std::optional<double> data_wait_ms) const {
  MetricsRow row{iter_, -1, unix_seconds(), {}};
  row.values = {{"smoothed_loss", smoothed_loss_}, {"lr", lr}, {"iter_per_s", iter_per_s}, {"data_wait_ms", data_wait_ms}};
  std::vector<double> outputs;
  for (const Blob* out : net_->outputs())
    for (int e = 0; e < out->count(); ++e) outputs.push_back(out->cpu_data()[e]);
  append_outputs(row, *net_, outputs);
  return row;
}

void Solver::emit(const MetricsRow& row) const {
  if (on_metrics) on_metrics(row);
}

float Solver::apply_update() {
  const int step_before = current_step_;
  const float rate = learning_rate(spec_, iter_, &current_step_);
  // Said here, not in the policy, which also serves messages that must not move the step.
  if (spec_.lr_policy == "multistep" && current_step_ != step_before)
    spdlog::info("MultiStep Status: Iteration {}, step = {}", iter_, current_step_);
  if (spec_.display > 0 && iter_ % spec_.display == 0) spdlog::info("Iteration {}, lr = {:.6g}", iter_, rate);
  const auto& params = net_->learnable_params();
  // Every vector step runs on the context's device; on a GPU the pointers below are
  // device pointers and only the clipping norm comes back to the host.
  const UpdateOps ops(ctx_);
  // 1. Clip by the global L2 norm of the gradients as summed over the iter_size passes,
  // 2. then average them: Caffe's order (ClipGradients before Normalize), so a ported
  // solver's threshold bounds the same sum it did in Caffe. One scaling does both.
  float scale = 1.f / static_cast<float>(spec_.iter_size);
  if (spec_.clip_gradients > 0) {
    const double norm = std::sqrt(ops.sumsq_diffs(params));
    if (!std::isfinite(norm)) throw Diverged(diverged("the gradients' L2 norm is " + number(static_cast<float>(norm))));
    if (norm > spec_.clip_gradients) {
      const float factor = static_cast<float>(spec_.clip_gradients / norm);
      spdlog::info("Gradient clipping: scaling down gradients (L2 norm {} > {}) by scale factor {}", norm,
                   spec_.clip_gradients, factor);
      scale *= factor;
    }
  }
  if (frozen_.empty()) find_frozen();
  if (scale != 1.f)
    for (size_t i = 0; i < params.size(); ++i)
      if (!frozen_[i]) ops.scale(params[i]->count(), scale, ops.mutable_diff(*params[i]));
  const auto broken = [&](size_t i) {
    return Diverged(diverged("after the update, " + net_->param_owner(i) + " holds NaN or infinite values" + kHiddenNaN,
                             "Stopped in the update"));
  };
  for (size_t i = 0; i < params.size(); ++i) {
    if (frozen_[i]) {
      // What a layer's forward writes into one (BatchNorm's statistics) is checked as the
      // step checks the others, with a read only; on a GPU snapshot() checks every parameter.
      if (frozen_[i] == kWrittenByForward && !ctx_.on_gpu() &&
          cpu_count_non_finite(params[i]->count(), params[i]->cpu_data()) > 0)
        throw broken(i);
      continue;
    }
    Blob& p = *params[i];
    const float decay = spec_.weight_decay * net_->params_decay()[i];
    UpdateInput in;
    in.n = p.count();
    in.rate = rate * net_->params_lr()[i];
    in.t = iter_ + 1;
    in.w = ops.mutable_data(p);                     // (n)
    in.g = ops.mutable_diff(p);                     // (n)
    in.h1 = ops.mutable_data(*history_[i]);         // (n)
    if (rule_->histories > 1) in.h2 = ops.mutable_data(*history_[i + params.size()]);  // (n)
    // 3. Regularise: Caffe adds the decay to the gradient, for every type but AdamW,
    // whose decay goes beside the step at the step's rate (w −= rate·wd·w).
    if (rule_->decoupled_decay)
      in.decoupled_decay = in.rate * decay;
    else
      in.coupled_decay = decay;
    in.l1 = spec_.regularization_type == "L1";
    // 4. The type's rule turns g into the step; 5. w −= step.
    if (!ops.step(*rule_, spec_, in)) throw broken(i);
  }
  if (net_->debug_info()) net_->log_update_debug_info();
  return rate;
}

void Solver::find_frozen() {
  // With lr_mult 0 every rule's step is 0 but for the momentum a restored history may still
  // carry (SGD, Nesterov), and such a parameter's gradient is never computed. Leaving it
  // alone spares a pass over it, and its memory stays unwritten, so what is made from its
  // values (a bf16 InnerProduct's rounded weights) is not made again each iteration.
  // Its histories keep their values where Caffe's would gather the weight decay: unread while frozen.
  const bool momentum = (spec_.type == "SGD" || spec_.type == "Nesterov") && spec_.momentum != 0.f;
  const auto& params = net_->learnable_params();
  std::set<const Blob*> written;  // by the layers' forward
  for (int l = 0; l < net_->num_layers(); ++l)
    for (const Blob* b : net_->layer(l).updated_by_forward()) written.insert(b);
  frozen_.assign(params.size(), 0);
  std::vector<std::string> carried;  // frozen by lr_mult, moved by a resumed momentum
  for (size_t i = 0; i < params.size(); ++i) {
    if (net_->params_lr()[i] != 0.f) continue;
    const float* v = history_[i]->cpu_data();  // (the parameter's shape): SGD's and Nesterov's V
    if (momentum && !std::all_of(v, v + history_[i]->count(), [](float x) { return x == 0.f; })) {
      carried.push_back(net_->param_owner(i));
      continue;
    }
    frozen_[i] = written.count(params[i]) ? kWrittenByForward : kFrozen;
  }
  if (!carried.empty())
    spdlog::warn(
        "{} {} lr_mult 0, but the resumed solver state holds a momentum for {}, which still moves {} as in Caffe, "
        "less each iteration (V = momentum x V); to keep {} fixed, start from the snapshot's weights with --weights "
        "instead of resuming (which starts every parameter's momentum afresh)",
        first_few(carried, 4), carried.size() > 1 ? "have" : "has", carried.size() > 1 ? "them" : "it",
        carried.size() > 1 ? "them" : "it", carried.size() > 1 ? "them" : "it");
}

std::string Solver::non_finite_losses() const {
  std::string named;
  const auto outs = net_->outputs();
  for (size_t j = 0; j < outs.size(); ++j) {
    if (net_->output_loss_weight(j) == 0.f) continue;
    const float* v = outs[j]->cpu_data();  // (count)
    for (int e = 0; e < outs[j]->count(); ++e)
      if (!std::isfinite(v[e])) {
        named += (named.empty() ? "" : ", ") + net_->output_names()[j] + " = " + number(v[e]);
        break;
      }
  }
  return named.empty() ? "the loss is not a finite number" : "the loss is not a finite number (" + named + ")";
}

std::string Solver::diverged(const std::string& what, const std::string& stopped) const {
  int step = current_step_;
  return "training diverged at iteration " + std::to_string(iter_) + ": " + what + " (learning rate " +
         fmt::format("{:.6g}", learning_rate(spec_, iter_, &step)) + "). " + stopped +
         "; no snapshot was written and earlier ones are kept. Lower base_lr, set clip_gradients (e.g. 10), or look "
         "for NaN/Inf in the data (debug_info: true logs each layer's magnitudes)";
}

void Solver::snapshot() {
  // Weights a non-finite gradient broke while the loss stayed finite must not become the
  // latest snapshot, which a resume would take: the CPU's update finds them at once, a
  // GPU's here (its weights are read to the host for writing anyway).
  if (ctx_.on_gpu()) {
    const auto& params = net_->learnable_params();
    for (size_t i = 0; i < params.size(); ++i)
      if (const long long bad = cpu_count_non_finite(params[i]->count(), params[i]->cpu_data()); bad > 0)
        throw Diverged(diverged(net_->param_owner(i) + " holds " + std::to_string(bad) +
                                    " NaN or infinite value(s) of " + std::to_string(params[i]->count()) +
                                    ", made so by an update since the last snapshot" + kHiddenNaN,
                                "Stopped before the snapshot"));
  }
  if (on_snapshot) on_snapshot(*this);
  snapshot_iter_ = iter_;
}

long long Solver::history_count() const {
  long long n = 0;
  for (const auto& h : history_) n += h->count();
  return n;
}

SolverState Solver::state() const {
  SolverState s;
  s.type = spec_.type;
  s.iter = iter_;
  s.current_step = current_step_;
  for (const auto& h : history_) {
    s.history.emplace_back(h->shape());
    s.history.back().copy_from(*h);
  }
  s.rng_state = ctx_.rng().state();
  s.recent_losses = losses_;
  s.smoothed_loss = smoothed_loss_;
  s.loss_origin = loss_origin_;
  auto collect = [&](const Net& n, const std::string& prefix) {
    for (int i = 0; i < n.num_layers(); ++i) {
      std::string st = n.layer(i).save_state();
      if (!st.empty()) s.layer_states[prefix + n.layer_name(i)] = std::move(st);
    }
  };
  collect(*net_, "train/");
  for (size_t t = 0; t < test_nets_.size(); ++t) collect(*test_nets_[t], "test" + std::to_string(t) + "/");
  return s;
}

void Solver::restore(const SolverState& s) {
  if (!s.type.empty() && s.type != spec_.type)
    throw Error("the snapshot was written with type: " + s.type + " but this config uses type: " + spec_.type +
                "; resume with the same solver type (or start from its weights with --weights)");
  if (s.history.size() != history_.size()) {
    const size_t params = net_->learnable_params().size();
    const std::string per = rule_->histories == 1 ? "one per learnable parameter" : "two per learnable parameter";
    throw Error("the snapshot holds " + std::to_string(s.history.size()) + " history blobs but this " + spec_.type +
                " solver on this net keeps " + std::to_string(history_.size()) + " (" + per + ", " +
                std::to_string(params) + " parameters); it belongs to another net or another solver type");
  }
  for (size_t i = 0; i < history_.size(); ++i) {
    if (s.history[i].count() != history_[i]->count())  // the blobs run over the parameters once per history
      throw Error("history blob " + std::to_string(i) + " in the snapshot, of " +
                  net_->param_owner(i % net_->learnable_params().size()) + ", has shape " +
                  s.history[i].shape_string() + " but that parameter has shape " + history_[i]->shape_string() +
                  " in this net: the snapshot belongs to another net (a changed num_output or kernel?); start from "
                  "its weights with --weights and --reinit for the changed layers");
    // A NaN momentum would make every weight NaN at the first update, then read as a divergence.
    const float* h = s.history[i].cpu_data();  // (the parameter's shape)
    if (!std::all_of(h, h + s.history[i].count(), [](float v) { return std::isfinite(v); }))
      throw Error("history blob " + std::to_string(i) +
                  " of the snapshot holds NaN or infinite values, so the file is damaged (crema never writes such a "
                  "snapshot); resume from an earlier one");
    history_[i]->copy_from(s.history[i]);
  }
  frozen_.clear();  // a restored momentum may still move a parameter of lr_mult 0
  if (s.type.empty()) {
    // Caffe's solver states do not record their type; a state of another rule with as
    // many histories (SGD's signed momentum read as RMSProp's squares) would turn into
    // NaN at the first update, reported as a divergence. Squares are never negative.
    spdlog::info(
        "The snapshot does not record its solver type (Caffe's do not): resuming as {}, which must be the "
        "type that wrote it",
        spec_.type);
    const size_t params = net_->learnable_params().size();
    for (size_t i = params * static_cast<size_t>(rule_->squared_from); i < history_.size(); ++i) {
      const float* h = history_[i]->cpu_data();  // (the parameter's shape)
      if (std::any_of(h, h + history_[i]->count(), [](float v) { return v < 0.f; }))
        throw Error("history blob " + std::to_string(i) + " of the snapshot holds negative values where a " +
                    spec_.type +
                    " solver keeps running squares of the gradients, so another solver type wrote it (SGD and "
                    "Nesterov keep a signed momentum); resume with the type that wrote it, or start from its weights "
                    "with --weights");
    }
  }
  if (s.iter < 0 || s.current_step < 0 ||
      (spec_.lr_policy == "multistep" && s.current_step > static_cast<int>(spec_.stepvalue.size())))
    throw Error("the snapshot's iteration (" + std::to_string(s.iter) + ") or step (" + std::to_string(s.current_step) +
                ") is out of range; the file is corrupt or belongs to another schedule");
  iter_ = s.iter;
  current_step_ = s.current_step;
  if (!s.rng_state.empty()) ctx_.rng().set_state(s.rng_state);
  auto apply = [&](Net& n, const std::string& prefix) {
    for (int i = 0; i < n.num_layers(); ++i) {
      auto it = s.layer_states.find(prefix + n.layer_name(i));
      if (it != s.layer_states.end()) n.layer(i).restore_state(it->second);
    }
  };
  apply(*net_, "train/");
  for (size_t t = 0; t < test_nets_.size(); ++t) apply(*test_nets_[t], "test" + std::to_string(t) + "/");
  // The displayed loss continues its smoothing window, so printed losses match an
  // uninterrupted run exactly. A window that cannot be this run's (average_loss changed
  // since the snapshot, a Caffe state that keeps none, an edited file) starts afresh:
  // it only affects the printed loss.
  const size_t window = static_cast<size_t>(spec_.average_loss);
  const long long since = static_cast<long long>(s.iter) - s.loss_origin;
  const bool finite = std::isfinite(s.smoothed_loss) && std::all_of(s.recent_losses.begin(), s.recent_losses.end(),
                                                                    [](float v) { return std::isfinite(v); });
  keep_losses_ = finite && since >= 0 && s.recent_losses.size() == std::min(window, static_cast<size_t>(since));
  if (!keep_losses_ && !s.recent_losses.empty())
    spdlog::info(
        "The snapshot's loss average ({} losses since iteration {}) cannot be continued with average_loss: {}; "
        "the displayed loss starts a new average here",
        s.recent_losses.size(), s.loss_origin, window);
  if (keep_losses_) {
    losses_ = s.recent_losses;
    smoothed_loss_ = s.smoothed_loss;
    loss_origin_ = s.loss_origin;
  }
}

}  // namespace crema
