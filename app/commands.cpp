#include "app/commands.hpp"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "app/data_tools.hpp"
#include "app/signals.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "engine/filler.hpp"
#include "engine/math.hpp"
#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/checkpoint.hpp"
#include "io/datum.hpp"
#include "io/files.hpp"
#include "io/hdf5.hpp"
#include "io/hdf5_append.hpp"
#include "io/job_config.hpp"
#include "io/lmdb.hpp"
#include "io/metrics.hpp"
#include "io/yaml_config.hpp"

namespace crema::app {

namespace fs = std::filesystem;

namespace {

// The process's peak resident memory so far, in MiB (Linux reports KiB).
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Whether a layer reads samples: an Input layer's tops stay as set up (zeros), and everything
// computed from them.
bool reads_data(const Net& net) {
  for (int i = 0; i < net.num_layers(); ++i)
    if (net.layer(i).is_data() && std::string(net.layer(i).type()) != "Input") return true;
  return false;
}

std::unique_ptr<Context> make_context(int gpu, long long seed) {
  if (gpu < 0) return std::make_unique<Context>(seed);
  try {
    return Context::gpu(gpu, seed);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    // No device at all (Caffe's -gpu 0 typed by habit on a CPU machine): the way to the CPU.
    std::string why;
    if (cuda::device_count(&why) > 0) throw;
    throw Error(std::string(e.what()) + "; leave out --gpu to run on the CPU");
  }
}

// Training's: --gpu N, or else the solver's solver_mode and device_id.
std::unique_ptr<Context> make_context(int gpu, const SolverSpec& spec) {
  if (gpu >= 0 || spec.solver_mode != "GPU") return make_context(gpu, spec.random_seed);
  try {
    return Context::gpu(spec.device_id, spec.random_seed);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    // Devices there, but not device_id's: that line is the one to change.
    std::string why;
    if (const int present = cuda::device_count(&why); present > 0 && spec.device_id >= present)
      throw Error(spec.device_id_mark.str() + ": device_id: " + e.what() + "; give a device_id below " +
                  std::to_string(present) + " ('crema device --gpu all' lists them)");
    // Every model-zoo solver says solver_mode: GPU: where it is written, and the way to the
    // CPU (exit 1 still, as for --gpu N: the file is right for a machine with a GPU).
    throw Error(spec.solver_mode_mark.str() + ": solver_mode: GPU: " + e.what() +
                "; to train on the CPU, give --set solver_mode=CPU (or write solver_mode: CPU)");
  }
}

// Creates the snapshots' folder and writes the longest file name the run will use
// there (the solver state of max_iter, as its temporary file), so that a folder that
// cannot be written or a prefix too long for the file system fails now, not at the
// first snapshot hours later.
void ensure_snapshots_writable(const std::string& prefix, int max_iter, const Mark& where) {
  const fs::path dir = fs::path(prefix).parent_path(), d = dir.empty() ? fs::path(".") : dir;
  std::error_code ec;
  fs::create_directories(d, ec);
  const auto cannot_write = [&](const std::string& why) {
    return ConfigError(where, "snapshot_prefix",
                       "cannot write snapshots to '" + d.string() + "'" + (why.empty() ? "" : ": " + why) +
                           "; set snapshot_prefix to a writable directory (e.g. --set snapshot_prefix=runs/myjob)");
  };
  std::error_code is_dir;
  if (!fs::is_directory(d, is_dir))  // a file in the way, or a folder name too long
    throw cannot_write(ec ? ec.message() : "it is not a folder");
  const std::string longest = io::temp_name_for(io::snapshot_base(prefix, max_iter) + ".solverstate.h5");
  std::FILE* f = std::fopen(longest.c_str(), "w");
  if (!f && errno == ENAMETOOLONG) {
    const std::string name = fs::path(longest).filename().string();
    throw ConfigError(where, "snapshot_prefix",
                      "'" + prefix + "' is too long: snapshot files such as '" + name + "' (" +
                          std::to_string(name.size()) +
                          " bytes) are longer than the file system allows; choose a "
                          "shorter prefix (e.g. --set snapshot_prefix=runs/myjob)");
  }
  // The folder is there, so "No such file or directory" is about the file: a file system such
  // as /proc creates none.
  if (!f && errno == ENOENT) throw cannot_write("the folder exists, but no file can be created in it");
  if (!f) throw cannot_write(std::strerror(errno));
  std::fclose(f);
  fs::remove(longest, ec);
}

// Who holds a prefix's lock, for a run that finds it taken.
std::string run_holder(const std::string& solver) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char started[32] = {};
  std::strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return fmt::format("crema train {}, pid {} on host {}, started {}", solver, ::getpid(), host, started);
}

// Snapshot files a killed run left unfinished under the prefix ("<prefix>_iter_<N>.caffemodel.h5
// .tmp-<pid>": checkpoints are written to a temporary name and renamed when complete). Called with
// the prefix locked, when no other run can be writing them; one per preemption during a
// snapshot would otherwise pile up, each as large as the model.
void remove_unfinished_snapshots(const std::string& prefix) {
  const fs::path dir = fs::path(prefix).parent_path();
  const std::string base = fs::path(prefix).filename().string();
  for (const std::string& name : io::regular_file_names(dir.string())) {
    const auto target = io::temp_name_target(name);
    if (!target) continue;
    const auto snapshot = io::parse_snapshot_name(*target);
    if (!snapshot || snapshot->prefix != base) continue;
    std::error_code size_ec, ec;
    const fs::path path = dir / name;
    const auto bytes = fs::file_size(path, size_ec);
    if (fs::remove(path, ec))
      spdlog::info("Removed {} ({:.1f} MiB), a snapshot file a killed run left unfinished", path.string(),
                   size_ec ? 0.0 : static_cast<double>(bytes) / (1 << 20));
  }
}

// The solver's precision on a context, as training would use it; TF32 exists on a GPU
// only, so on the CPU such a net runs in FP32 (`doing`: "testing", "timing").
void apply_solver_precision(Context& ctx, const SolverSpec& solver, const std::string& doing) {
  if (solver.precision == Precision::tf32 && !ctx.on_gpu())
    spdlog::info("the solver's precision: tf32 applies on a GPU; {} on the CPU in fp32", doing);
  else
    ctx.set_precision(solver.precision);
}

// Flattens a config tree into key path -> scalar text, for comparing two configs.
void flatten(const Node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (n.is_map()) {
    for (const auto& [k, v] : n.entries()) flatten(v, path.empty() ? k : path + "." + k, out);
  } else if (n.is_seq()) {
    for (size_t i = 0; i < n.items().size(); ++i) flatten(n.items()[i], path + "[" + std::to_string(i) + "]", out);
  } else {
    out[path] = n.is_scalar() ? n.str() : "~";
  }
}

// A resumed run matches an uninterrupted one only with the same config; say what changed.
void warn_config_changes(const std::string& snapshot, const std::string& stored_yaml, const Node& current) {
  if (stored_yaml.empty()) return;  // a Caffe-written snapshot records no config
  std::map<std::string, std::string> before, now;
  try {
    flatten(io::parse_yaml(stored_yaml, snapshot + " (its stored config)"), "", before);
  } catch (const Error& e) {  // only a comparison is lost: the weights and state were read
    spdlog::warn("{}; config changes since the snapshot are not checked", e.what());
    return;
  }
  flatten(current, "", now);
  // Keys that say where and how often the run reports and snapshots, not what it trains.
  // (test_initialization tests at iteration 0 only, which a resume is past.)
  static const std::set<std::string> bookkeeping = {"snapshot_prefix",
                                                    "snapshot",
                                                    "snapshot_keep",
                                                    "snapshot_after_train",
                                                    "snapshot_diff",
                                                    "snapshot_format",
                                                    "display",
                                                    "average_loss",
                                                    "metrics",
                                                    "debug_info",
                                                    "test_initialization"};
  // device_id picks a GPU: on the CPU it changes nothing.
  const auto mode = now.find("solver_mode");
  const bool on_cpu = mode == now.end() || mode->second == "CPU" || mode->second == "0";
  // max_iter says when to stop, except where the rate is scheduled over it.
  const auto policy = now.find("lr_policy");
  const bool scheduled = policy != now.end() && (policy->second == "poly" || policy->second == "cosine");
  std::vector<std::string> changes, reporting;
  const auto note = [&](const std::string& key, const std::string& what) {
    const std::string top = key.substr(0, key.find_first_of(".["));
    const bool same_training =
        bookkeeping.count(top) || (top == "max_iter" && !scheduled) || (top == "device_id" && on_cpu);
    (same_training ? reporting : changes).push_back(key + " (" + what + ")");
  };
  for (const auto& [k, v] : now) {
    auto it = before.find(k);
    if (it == before.end())
      note(k, "added: " + v);
    else if (it->second != v)
      note(k, it->second + " -> " + v);
  }
  for (const auto& [k, v] : before)
    if (!now.count(k)) note(k, "removed, was " + v);
  if (!changes.empty())
    spdlog::warn(
        "The config differs from the one this snapshot was written with: {}. The run continues with the new "
        "values, so it will not match an uninterrupted run beyond what you changed.",
        first_few(changes, 8));
  if (!reporting.empty())
    spdlog::info(
        "Changed since the snapshot, in when the run stops, reports and snapshots only (the steps are the same): {}",
        first_few(reporting, 8));
}

// Caffe's UpgradeSnapshotPrefixProperty: no prefix is the solver's path without its
// extension (beside the solver, so two jobs' solver.yaml files do not share snapshots);
// a directory (existing, or written with a trailing '/') gets the solver's name in it.
std::string snapshot_prefix(const std::string& written, const std::string& solver_path) {
  const fs::path solver(solver_path);
  std::error_code ec;
  std::string prefix = written;
  if (written.empty())
    prefix = (solver.parent_path() / solver.stem()).string();
  else if (written.back() == '/' || fs::is_directory(written, ec))
    prefix = (fs::path(written) / solver.stem()).string();
  else
    return written;
  spdlog::info("snapshot_prefix {} is {}", written.empty() ? "was not given, so it" : "'" + written + "' is a directory; it",
               prefix);
  return prefix;
}

std::vector<Net*> solver_test_nets(Solver& solver) {
  std::vector<Net*> nets;
  for (size_t t = 0; solver.test_net(t); ++t) nets.push_back(solver.test_net(t));
  return nets;
}

// A weights file none of whose layers is in the net (each file is by itself: later
// files may override earlier ones).
// Where train's weights were given: --weights, or the solver's `weights` key.
struct FineTuning {
  Mark mark;
  std::string key;
};

[[noreturn]] void refuse_unmatched_weights(const FineTuning& given, const std::string& file,
                                           const std::vector<std::string>& in_file,
                                           const std::vector<std::string>& net_layers) {
  std::string same_but_case;
  for (const std::string& layer : in_file)
    for (const std::string& n : net_layers)
      if (same_but_case.empty() && lowercase(n) == lowercase(layer))
        same_but_case =
            " ('" + layer + "' in the file, '" + n + "' in the net: layer names are compared with their case)";
  throw ConfigError(given.mark, given.key,
                    "no layer with parameters of '" + file + "' is in the net, so it would load nothing (the file's: " +
                        first_few(in_file, 8) + "; the net's: " + first_few(net_layers, 8) + ")" + same_but_case +
                        ". Weights go to the layers of the same name, as in Caffe: name the net's layers as the "
                        "file's, or leave the file out to train from the fillers");
}

// Copies weights by layer name from each file in turn (later files win), leaving the
// --reinit layers at their filler initialisation, then prints where every layer with
// parameters got its values: Caffe loads silently, and users lose runs to a layer
// that quietly kept its random initialisation.
// Layers only the test nets have (`test_nets`) get their weights too, as in Caffe; the
// others share the TRAIN net's parameters.
// `fine_tuning` (train, with where its weights were given): a file none of whose layers is in the nets is refused (the
// inference commands refuse any layer left unloaded instead). Returns the layers with parameters that no file provided
// (and --reinit did not name).
std::vector<std::string> load_weight_files(Net& net, const std::vector<std::string>& files,
                                           const std::vector<std::string>& reinit = {}, bool quiet = false,
                                           const std::vector<Net*>& test_nets = {},
                                           const FineTuning* fine_tuning = nullptr,
                                           std::vector<std::string>* renamed = nullptr) {
  std::vector<const Net*> all_nets{&net};
  all_nets.insert(all_nets.end(), test_nets.begin(), test_nets.end());
  // The layers with parameters, for messages.
  const auto with_parameters = [&] {
    std::vector<std::string> names;
    for (const Net* n : all_nets)
      for (int i = 0; i < n->num_layers(); ++i)
        if (!n->layer(i).blobs().empty() && std::find(names.begin(), names.end(), n->layer_name(i)) == names.end())
          names.push_back(n->layer_name(i));
    return names;
  };
  for (const auto& name : reinit) {
    const Layer* layer = nullptr;
    for (const Net* n : all_nets)
      if (!layer) layer = n->layer_by_name(name);
    if (!layer) {
      std::vector<std::string> names;
      for (const Net* n : all_nets)
        for (int i = 0; i < n->num_layers(); ++i) names.push_back(n->layer_name(i));
      throw ConfigError(Mark{}, "--reinit",
                        "names layer '" + name + "', which is not in the net" + did_you_mean(name, names));
    }
    // Nothing to re-learn: most likely a slip for a neighbouring layer, which would then
    // keep the file's weights unnoticed.
    if (layer->blobs().empty())
      throw ConfigError(Mark{}, "--reinit",
                        "names layer '" + name + "' (" + layer->type() +
                            "), which has no parameters to re-initialise; the layers with parameters are " +
                            first_few(with_parameters(), 8));
  }
  std::map<std::string, std::string> source_of;  // layer -> file it was loaded from
  std::vector<std::pair<std::string, std::vector<std::string>>> ignored;
  std::vector<io::UnusedLayer> ignored_with_values;
  for (const auto& f : files) {
    io::Weights weights = io::load_weights(f);
    std::vector<std::string> with_values;  // the file's layers with parameters (Caffe's files list every layer)
    for (const io::LayerWeights& lw : weights)
      if (!lw.blobs.empty()) with_values.push_back(lw.layer);
    std::erase_if(weights, [&](const io::LayerWeights& lw) {
      return std::find(reinit.begin(), reinit.end(), lw.layer) != reinit.end();
    });
    // A file whose every layer with parameters --reinit names was left out on purpose.
    const bool expected = with_values.empty() ||
                          std::any_of(weights.begin(), weights.end(), [](const auto& lw) { return !lw.blobs.empty(); });
    // Counted: layers with parameters that took the file's (a parameter-free layer of the
    // same name, `data` or `loss`, matches in almost any net).
    const auto learns = [](const Net& n, const std::string& name) {
      const Layer* layer = n.layer_by_name(name);
      return layer && !layer->blobs().empty();
    };
    auto report = io::copy_weights(net, weights, f);
    size_t loaded = 0;
    for (const auto& l : report.loaded) {
      source_of[l] = f;
      loaded += learns(net, l);
    }
    for (Net* test : test_nets) {
      io::Weights test_only = weights;
      std::erase_if(test_only, [&](const io::LayerWeights& lw) { return net.layer_by_name(lw.layer) != nullptr; });
      for (const auto& l : io::copy_weights(*test, test_only, f).loaded) {
        source_of[l] = f;
        std::erase(report.ignored_source, l);
        loaded += learns(*test, l);
      }
    }
    // Caffe loads such a file without a word and trains from random weights; a fine-tuning
    // run that learns nothing from its model is a mistake, whatever the cause.
    if (fine_tuning && loaded == 0 && expected)
      refuse_unmatched_weights(*fine_tuning, f, with_values, with_parameters());
    ignored.emplace_back(f, report.ignored_source);
    for (io::UnusedLayer& u : io::unused_layers(weights, report.ignored_source, f))
      ignored_with_values.push_back(std::move(u));
  }
  std::vector<std::string> loaded(reinit);  // --reinit layers count as provided
  for (const auto& [layer, file] : source_of) loaded.push_back(layer);
  const std::vector<std::string> kept = io::layers_not_loaded(net, loaded);
  if (quiet) return kept;
  std::vector<const Layer*> shown;
  for (int i = 0; i < net.num_layers(); ++i) shown.push_back(&net.layer(i));
  for (const Net* test : test_nets)
    for (int i = 0; i < test->num_layers(); ++i)
      if (!net.layer_by_name(test->layer_name(i)) &&
          std::none_of(shown.begin(), shown.end(), [&](const Layer* l) { return l->name() == test->layer_name(i); }))
        shown.push_back(&test->layer(i));
  if (!files.empty())
    spdlog::info("Weights of the {} net{}:", phase_name(net.phase()),
                 shown.size() > static_cast<size_t>(net.num_layers()) ? " and test-only layers" : "");
  for (const Layer* layer : files.empty() ? std::vector<const Layer*>{} : shown) {
    const Layer& l = *layer;
    if (l.blobs().empty()) continue;
    const std::string& name = l.name();
    const bool reinit_layer = std::find(reinit.begin(), reinit.end(), name) != reinit.end();
    auto it = source_of.find(name);
    const int index = net.layer_index(name);
    const std::vector<std::string> sharing = it == source_of.end() && !reinit_layer && index >= 0
                                                 ? io::loaded_through_sharing(net, index, loaded)
                                                 : std::vector<std::string>{};
    // Each sharer with where its parameters came from (a file, or --reinit).
    std::string through;
    for (const std::string& s : sharing) {
      const auto file = source_of.find(s);
      through += (through.empty() ? "'" : ", '") + s + "' (" +
                 (file != source_of.end() ? "loaded from " + file->second : std::string("--reinit")) + ")";
    }
    const std::string from = it != source_of.end() ? "loaded from " + it->second
                             : reinit_layer        ? "re-initialised from its fillers (--reinit)"
                             : !sharing.empty()
                                 ? "shares its parameters with " + through
                                 : "kept at its filler initialisation (no layer of that name in the files)";
    spdlog::info("    {:<20} {}", name, from);
  }
  for (const auto& [file, layers] : ignored)
    for (const auto& l : layers) spdlog::info("    ignored '{}' from {} (no layer of that name in the net)", l, file);
  // A layer left at its random initialisation that lr_mult 0 keeps from learning stays
  // random for good: a fine-tuning config that froze a layer it meant to load. Not a
  // layer whose fixed values are the point (FCN's bilinear upsampling, a constant kernel),
  // BatchNorm (its statistics come from the data, never from a learning rate), nor a
  // layer sharing another's parameters.
  const auto random_filler = [](const Layer& l) {
    if (!l.spec().config) return false;
    for (const auto& [key, value] : l.spec().config->entries())
      if (value.is_map())
        for (const char* filler : {"weight_filler", "filler"})
          if (const Node* f = value.find(filler); f && f->is_map())
            if (const Node* type = f->find("type"); type && type->is_scalar() && is_random_filler(type->str()))
              return true;
    return false;
  };
  // A layer --reinit names is meant to learn anew: frozen, it would not.
  const std::vector<Blob*>& params = net.learnable_params();
  for (int i = 0; fine_tuning && i < net.num_layers(); ++i) {
    const Layer& l = net.layer(i);
    const bool reinit_layer = std::find(reinit.begin(), reinit.end(), l.name()) != reinit.end();
    if (l.blobs().empty() || (!reinit_layer && std::find(kept.begin(), kept.end(), l.name()) == kept.end()) ||
        !random_filler(l))
      continue;
    bool frozen = true;
    for (size_t j = 0; j < l.blobs().size() && frozen; ++j) {
      const auto it = std::find(params.begin(), params.end(), l.blobs()[j].get());
      frozen = !net.param_is_shared(i, static_cast<int>(j)) && it != params.end() &&
               net.params_lr()[static_cast<size_t>(it - params.begin())] == 0.f;
    }
    if (frozen && reinit_layer)
      spdlog::warn(
          "Layer '{}' is re-initialised from its fillers (--reinit) and lr_mult 0 on all its parameters stops it from "
          "learning: it will stay random. Give it a learning rate to re-learn it, or load it (out of --reinit) if "
          "the weights can fit",
          l.name());
    else if (frozen)
      spdlog::warn(
          "Layer '{}' keeps its random filler initialisation and lr_mult 0 on all its parameters stops it from "
          "learning: it will stay random. {}, or give it a learning rate",
          l.name(),
          files.empty() ? "No weights file was given (--weights, or the solver's weights): start from one that holds it"
                        : "Name it as its layer in the weights files");
  }
  // A layer left at its fillers while the files hold an unused layer of the very same
  // parameter shapes: most often a layer renamed by mistake (conv2 -> Conv2), which would
  // train from random weights with only an info line to show for it.
  // Training warns (not of BatchNorm, whose statistics no filler sets); scoring, which
  // refuses any layer left unloaded, says it in the refusal (`renamed`).
  for (const std::string& name : kept) {
    const Layer* l = net.layer_by_name(name);
    if (!l || l->blobs().empty() || (fine_tuning ? !random_filler(*l) : !renamed)) continue;
    const io::UnusedLayer* same = io::same_shapes(*l, ignored_with_values);
    if (!same) continue;
    if (fine_tuning)
      spdlog::warn(
          "Layer '{}' keeps its filler initialisation, while layer '{}' of {}, with parameters of the same shapes, is "
          "not used: if it is that layer renamed, give it the name '{}' to load its weights (or name it in --reinit "
          "to say it is to be learnt anew)",
          name, same->layer, same->file, same->layer);
    if (renamed) renamed->push_back(io::rename_hint(net, name, ignored_with_values));
  }
  return kept;
}

// What a fresh start would train in silence and wrongly (`kept`: the layers no file gave
// weights): weights that all start at 0 in more than one layer (no weight_filler, whose
// default is Caffe's constant 0), which keeps every gradient that would move them at 0 and
// the run at chance; a negative lr_mult or loss_weight, which climbs the loss; and BatchNorm told to use
// global statistics that nothing computed.
void warn_about_start(const Net& net, const std::vector<std::string>& kept) {
  const auto is_kept = [&](const std::string& name) { return std::find(kept.begin(), kept.end(), name) != kept.end(); };
  const std::vector<Blob*>& params = net.learnable_params();
  const auto lr_of = [&](const Blob* b) {
    const auto it = std::find(params.begin(), params.end(), b);
    return it == params.end() ? 0.f : net.params_lr()[static_cast<size_t>(it - params.begin())];
  };
  std::vector<std::string> zero;
  for (int i = 0; i < net.num_layers(); ++i) {
    const Layer& l = net.layer(i);
    for (size_t j = 0; j < net.top_vec(i).size(); ++j)
      if (const float w = l.loss_weight(static_cast<int>(j)); w < 0.f)
        // A split inserted for a loss's other readers carries its weight: the blob is the split's input.
        spdlog::warn(
            "Top '{}' has a negative loss_weight ({}): training climbs that loss instead of descending it; give a "
            "positive loss_weight, or 0 to only log it",
            l.spec().inserted_split ? net.bottom_name(i, 0) : net.top_name(i, j), w);
    if (l.blobs().empty()) continue;
    for (size_t j = 0; j < l.blobs().size(); ++j)
      if (const float lr = lr_of(l.blobs()[j].get()); lr < 0.f && !net.param_is_shared(i, static_cast<int>(j)))
        spdlog::warn(
            "Layer '{}' parameter {} learns at a negative rate (lr_mult {}): its updates climb the loss instead of "
            "descending it; give lr_mult 0 to freeze it, or a positive one",
            l.name(), j, lr);
    if (!is_kept(l.name())) continue;
    const Blob& w = *l.blobs()[0];
    const std::string type = l.type();
    // Left to Caffe's default filler: a constant 0 written out is someone's choice (Fixup's
    // zeroed residual branches, which their shortcuts keep learning).
    bool filler_given = false;
    if (l.spec().config)
      for (const auto& [key, value] : l.spec().config->entries())
        if (value.is_map() && (value.find("weight_filler") || value.find("filler"))) filler_given = true;
    if (!filler_given && type != "Bias" && type != "BatchNorm" && type != "Scale" && type != "Parameter" &&
        w.count() > 1 && lr_of(&w) > 0.f &&
        std::all_of(w.cpu_data(), w.cpu_data() + w.count(), [](float v) { return v == 0.f; }))
      zero.push_back(l.name());
    const Node* bn = type == "BatchNorm" && l.spec().config ? l.spec().config->find("batch_norm_param") : nullptr;
    const Node* global = bn && bn->is_map() ? bn->find("use_global_stats") : nullptr;
    if (global && global->as_bool() && l.blobs().size() == 3 && l.blobs()[2]->count() == 1 &&
        l.blobs()[2]->cpu_data()[0] == 0.f)
      spdlog::warn(
          "BatchNorm '{}' has use_global_stats: true in the TRAIN net, but no weights file gave it statistics: it "
          "normalises with a mean and variance of 0. Leave use_global_stats out to train on each batch's statistics "
          "(it is for fine-tuning with a model's), or load them with --weights",
          l.name());
  }
  // Only zero layers that feed others through the net: one at the top (or heads side by side)
  // learns from its first update on, as a logistic regression does.
  std::vector<std::string> stacked;
  for (int i = 0; i < net.num_layers(); ++i) {
    if (std::find(zero.begin(), zero.end(), net.layer(i).name()) == zero.end()) continue;
    std::set<std::string> reached(net.layer(i).spec().top.begin(), net.layer(i).spec().top.end());
    for (int k = i + 1; k < net.num_layers(); ++k) {
      const LayerSpec& s = net.layer(k).spec();
      if (std::none_of(s.bottom.begin(), s.bottom.end(), [&](const std::string& b) { return reached.count(b) > 0; }))
        continue;
      reached.insert(s.top.begin(), s.top.end());
      if (std::find(zero.begin(), zero.end(), net.layer(k).name()) != zero.end()) {
        for (const std::string& name : {net.layer(i).name(), net.layer(k).name()})
          if (std::find(stacked.begin(), stacked.end(), name) == stacked.end()) stacked.push_back(name);
      }
    }
  }
  zero = stacked;
  if (!zero.empty())
    spdlog::warn(
        "The weights of layers {} all start at 0 (no weight_filler: Caffe's default is constant 0), one feeding "
        "another: through zero weights every gradient that would move the layers below is 0 too, and training stays "
        "at chance. Give them "
        "weight_filler: {{type: xavier}} (msra before a ReLU)",
        fmt::format("'{}'", fmt::join(zero, "', '")));
}

// "iterations 10 and 20", "12 snapshots, iterations 1000 to 12000".
std::string iterations_of(const std::vector<io::SnapshotOnDisk>& snaps) {
  if (snaps.size() > 3)
    return fmt::format("{} snapshots, iterations {} to {}", snaps.size(), snaps.front().iter, snaps.back().iter);
  std::string list;
  for (size_t i = 0; i < snaps.size(); ++i)
    list += (i == 0 ? "" : i + 1 == snaps.size() ? " and " : ", ") + std::to_string(snaps[i].iter);
  return (snaps.size() == 1 ? "iteration " : "iterations ") + list;
}

// --resume: the state file of the latest snapshot under `prefix` (by iteration, not by
// name: 100 comes after 20), or "" when there is none and the run starts anew (or, with
// weights only there, is refused by earlier_run_message).
// Where crema has written no solver state under the prefix, Caffe's binary ones count: a
// Caffe run's folder is resumed where Caffe left it. Once crema's run has its own, those are
// taken, whatever iteration Caffe's files there name.
std::string latest_to_resume(const std::vector<io::SnapshotOnDisk>& earlier, const std::string& prefix,
                             const TrainOptions& opt, bool solver_weights) {
  const auto has_state = [](const io::SnapshotOnDisk& s) { return !s.state.empty(); };
  const bool own = std::any_of(earlier.begin(), earlier.end(), has_state);
  const std::vector<io::SnapshotOnDisk> any = own ? earlier : io::snapshots_on_disk(prefix, /*caffe_binary=*/true);
  const auto latest = std::find_if(any.rbegin(), any.rend(), has_state);
  if (latest == any.rend()) {
    // A mistyped prefix, or a requeued job in another working directory, lands here too.
    if (any.empty())
      spdlog::warn("--resume: no snapshot under {} yet, so the run starts anew", fs::absolute(prefix).string());
    else if (earlier.empty())  // Caffe's binary weights only: nothing to continue, nothing overwritten
      spdlog::warn("--resume: under {} are Caffe's weights ({}) but no solver state, so the run starts anew{}",
                   fs::absolute(prefix).string(), any.back().weights,
                   opt.weights.empty() && !solver_weights ? "; give them with --weights to start from them" : "");
    return {};
  }
  if (!io::ends_with_nocase(latest->state, ".h5"))
    spdlog::info("--resume: the latest snapshot under {} is Caffe's binary {}", prefix, latest->state);
  std::vector<std::string> unused;
  if (!opt.weights.empty()) unused.push_back("--weights");
  if (solver_weights) unused.push_back("the solver's weights");
  if (!opt.reinit.empty()) unused.push_back("--reinit");
  if (!unused.empty())
    spdlog::info("--resume: {} not used; the run continues from its snapshot of iteration {}",
                 fmt::format("{}", fmt::join(unused, " and ")), latest->iter);
  return latest->state;
}

// A fresh run would overwrite the snapshots an earlier run left under its prefix (a job
// requeued without --resume, a config run again): say what is there and the ways on.
std::string earlier_run_message(const std::vector<io::SnapshotOnDisk>& earlier, const std::string& prefix,
                                bool resume) {
  const io::SnapshotOnDisk& last = earlier.back();
  const std::string own_prefix = "--set " + shell_quote("snapshot_prefix=" + prefix + "_2");
  const std::string overwrite = "start anew over it with --overwrite (which deletes its snapshots and metrics first)";
  if (std::none_of(earlier.begin(), earlier.end(), [](const auto& s) { return !s.state.empty(); }))
    return "weights of an earlier run exist under the prefix '" + prefix + "' (" + iterations_of(earlier) +
           "; the latest: " + last.weights + ") but no solver state" +
           (resume ? ", so --resume has nothing to continue from" : "") +
           ", and a new run would overwrite them. Start from those weights under a prefix of its own (--weights " +
           shell_quote(last.weights) + " " + own_prefix + "), or " + overwrite;
  return "snapshots of an earlier run exist under the prefix '" + prefix + "' (" + iterations_of(earlier) +
         "; the latest: " + (last.state.empty() ? last.weights : last.state) +
         "), and a new run would overwrite them. Continue that run with --resume (from its latest snapshot) or "
         "--snapshot FILE; " +
         overwrite + "; or give this run a prefix of its own (" + own_prefix + ")";
}

// --overwrite: the earlier run's snapshots, metrics and class list go, so that a later
// --resume cannot pick up one of its snapshots, its curves do not mix with this run's and
// classify does not name this run's classes by its list.
void remove_earlier_run(const std::vector<io::SnapshotOnDisk>& earlier, const std::string& prefix) {
  // A stop asked for during setup (Ctrl-C, a scheduler's SIGTERM) comes before the deletion.
  if (stop_requested()) throw Error("stopped before training began; --overwrite deleted nothing under " + prefix);
  std::vector<std::string> files;
  for (const io::SnapshotOnDisk& s : earlier)
    for (const std::string& f : {s.weights, s.state})
      if (!f.empty()) files.push_back(f);
  const size_t snapshot_files = files.size();
  for (std::string& f : io::metrics_files_on_disk(prefix)) files.push_back(std::move(f));
  std::error_code ec;
  if (fs::is_regular_file(classes_path(prefix), ec)) files.push_back(classes_path(prefix));
  for (const std::string& f : files) {
    fs::remove(f, ec);
    if (ec) throw Error("--overwrite: cannot delete '" + f + "' of the earlier run: " + ec.message());
  }
  if (!files.empty())
    spdlog::warn(
        "--overwrite: deleted the earlier run's {} snapshot files{} and {} other files (metrics, class list) "
        "under {}",
        snapshot_files, earlier.empty() ? "" : " (" + iterations_of(earlier) + ")", files.size() - snapshot_files,
        prefix);
}

// snapshot_keep: N. After the snapshot of `iter`, those under `prefix` up to it beyond the
// latest N go, so a long run's disk use stays bounded; later ones (of a run this one
// replaces, see warn_later_snapshots) are not this run's to remove. A file that cannot be
// removed is said and left: the training goes on.
void prune_snapshots(const std::string& prefix, int iter, int keep) {
  std::vector<io::SnapshotOnDisk> upto = io::snapshots_on_disk(prefix);
  std::erase_if(upto, [&](const io::SnapshotOnDisk& s) { return s.iter > iter; });
  if (upto.size() <= static_cast<size_t>(keep)) return;
  upto.resize(upto.size() - static_cast<size_t>(keep));
  for (const io::SnapshotOnDisk& s : upto)
    for (const std::string& f : {s.weights, s.state}) {
      std::error_code ec;
      if (!f.empty() && !fs::remove(f, ec) && ec) spdlog::warn("snapshot_keep: cannot remove {}: {}", f, ec.message());
    }
  spdlog::info("snapshot_keep {}: removed the snapshot{} of {}", keep, upto.size() > 1 ? "s" : "", iterations_of(upto));
}

// Caffe's HDF5 loader looks layers up by the name as written: one stored as conv1%2F7x7_s2
// is skipped there, and the layer silently keeps its fillers.
void warn_names_caffe_cannot_read(const Net& net) {
  std::vector<std::string> slashed;
  for (int i = 0; i < net.num_layers(); ++i)
    if (!net.layer(i).blobs().empty() && net.layer_name(i).find('/') != std::string::npos)
      slashed.push_back(net.layer_name(i));
  if (slashed.empty()) return;
  spdlog::warn(
      "layer name(s) with '/' ({}) are stored in the snapshots with '/' as %2F ({}): crema reads them back, but "
      "Caffe's HDF5 loader does not find them and keeps those layers at their fillers; rename them (e.g. '/' to "
      "'_') for weights Caffe can use",
      first_few(slashed, 4), io::escape_h5_name(slashed.front()));
}

// A file an output layer (HDF5Output) of `nets` writes that the command also reads: a data
// layer's file or a weights file (`inputs`, each with what names it). Writing it would replace
// the data it came from. (extract-features' own outputs must not exist at all.)
struct NamedFile {
  std::string path, named_by;
};
void refuse_writing_over_inputs(const std::vector<const Net*>& nets, const std::vector<NamedFile>& inputs) {
  std::vector<NamedFile> read(inputs);
  for (const Net* net : nets)
    for (int i = 0; i < net->num_layers(); ++i)
      for (const std::string& f : net->layer(i).files_read())
        read.push_back({f, "layer '" + net->layer_name(i) + "' of the " + phase_name(net->phase()) +
                               " net reads its samples from it"});
  const auto same = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return fs::equivalent(a, b, ec);  // false where either is missing
  };
  for (const Net* net : nets)
    for (int i = 0; i < net->num_layers(); ++i)
      for (const std::string& w : net->layer(i).files_written())
        for (const NamedFile& r : read)
          if (same(w, r.path))
            net->layer(i).spec().fail("it writes '" + w + "', which this command reads (" + r.named_by +
                                      "): the output would replace it; give the output another file name");
}

std::vector<NamedFile> named_weights(const std::vector<std::string>& files, const std::string& option) {
  std::vector<NamedFile> named;
  for (const std::string& f : files) named.push_back({f, "the weights given with " + option});
  return named;
}

// A resume at iteration `iter` under a prefix that holds later snapshots (resuming an
// earlier one on purpose): they are of the run this one replaces from there on.
void warn_later_snapshots(const std::vector<io::SnapshotOnDisk>& earlier, const std::string& prefix, int iter) {
  std::vector<io::SnapshotOnDisk> later;
  std::copy_if(earlier.begin(), earlier.end(), std::back_inserter(later),
               [&](const io::SnapshotOnDisk& s) { return s.iter > iter; });
  if (later.empty()) return;
  spdlog::warn(
      "the prefix '{}' holds snapshots later than the one resumed (iteration {}): {}, of the run this one "
      "replaces from there on. This run overwrites those of the iterations it snapshots, and until it has "
      "passed them --resume would take the latest of them; move them away to keep them",
      prefix, iter, iterations_of(later));
}

}  // namespace

void refuse_missing_input(const std::string& option, const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) && fs::exists(path, ec)) return;
  // Caffe's name for a snapshot file, typed by habit, where crema wrote its .h5 twin.
  const bool named_as_caffe = io::ends_with_nocase(path, ".caffemodel") || io::ends_with_nocase(path, ".solverstate");
  if (named_as_caffe && fs::is_regular_file(path + ".h5", ec))
    throw ConfigError(Mark{}, option,
                      "'" + path + "' does not exist, but '" + path +
                          ".h5' does: crema writes its snapshots in HDF5; give that file");
  throw ConfigError(
      Mark{}, option,
      "'" + path + "' " + (fs::is_directory(path, ec) ? "is a directory" : "does not exist") + "; give " + what);
}

void refuse_missing_weights(const std::vector<std::string>& weights) {
  for (const auto& w : weights) refuse_missing_input("--weights", w, "a .caffemodel or .caffemodel.h5 file");
}

int train(const TrainOptions& opt) {
  if (!opt.weights.empty() && !opt.snapshot.empty())
    throw ConfigError(Mark{}, "", "give either --weights (start from those weights) or --snapshot (resume a run), not both");
  if (!opt.snapshot.empty() && (opt.resume || opt.overwrite))
    throw ConfigError(Mark{}, "",
                      std::string("give either --snapshot (resume from that file) or ") +
                          (opt.resume ? "--resume (resume from the latest snapshot under snapshot_prefix)"
                                      : "--overwrite (start anew over an earlier run's snapshots)") +
                          ", not both");
  if (opt.resume && opt.overwrite)
    throw ConfigError(Mark{}, "",
                      "give either --resume (continue the earlier run) or --overwrite (start anew, deleting its "
                      "snapshots), not both");
  if (!opt.reinit.empty() && !opt.snapshot.empty())
    throw ConfigError(Mark{}, "", "--reinit applies to layers loaded with --weights, not to a --snapshot run");
  // Before the nets are built (minutes for a large one), not after.
  if (!opt.snapshot.empty())
    refuse_missing_input("--snapshot", opt.snapshot, "the .solverstate.h5 (or Caffe's .solverstate) of a snapshot");
  refuse_missing_weights(opt.weights);
  // Counted from here, setup included: the scheduler's clock runs from the job's start.
  const auto started = std::chrono::steady_clock::now();
  // From the start: a scheduler's SIGTERM or a SIGHUP during a long setup would kill the
  // process with nothing said; handled, it stops before the first iteration with a snapshot.
  install_signal_handlers(opt.signal_effects);
  // Until the first iteration, where the solver polls for a stop, a read that never returns
  // (a data file on a stalled network file system, a FIFO) would hold the stop for good.
  std::optional<SetupWatch> setup_watch;
  try {
    setup_watch.emplace(
        opt.time_limit_s > 0 ? std::optional(started + std::chrono::seconds(opt.time_limit_s)) : std::nullopt,
        "--time-limit " + opt.time_limit +
            " passed in this run's setup, so it made no progress, and a requeued job would do the same (raise "
            "--time-limit)");
  } catch (const std::system_error& e) {  // no thread to be had: setup goes on unwatched
    spdlog::warn("cannot watch the setup for a read that never returns ({})", e.what());
  }
  auto root = io::load_solver_config(opt.solver, opt.overrides);
  if (!opt.stages.empty() || opt.level) {
    // As Caffe's `caffe train --stage/--level` (the TRAIN net's state only), written into the
    // config: the snapshot keeps them, and a resume without them is told what changed.
    const Mark flag{std::make_shared<const std::string>("--stage/--level")};
    std::vector<std::string> stages = SolverSpec::parse(*root).train_state.stage;
    stages.insert(stages.end(), opt.stages.begin(), opt.stages.end());
    Node* state = root->find("train_state");
    if (!state || !state->is_map()) state = &root->set("train_state", Node::map(flag, "train_state"));
    Node list = Node::seq(flag, "train_state.stage");
    for (const std::string& stage : stages) list.push_back(Node::scalar(stage, flag, "train_state.stage"));
    state->set("stage", std::move(list));
    if (opt.level) state->set("level", Node::scalar(std::to_string(*opt.level), flag, "train_state.level"));
  }
  const SolverSpec spec = SolverSpec::parse(*root);
  const NetSpec net_spec = NetSpec::parse(*spec.net);
  if (const std::string unnamed = net_spec.stages_no_rule_names(opt.stages); !unnamed.empty())
    spdlog::warn("--stage: {}", unnamed);
  // The stages the solver's own train_state and test_state name: a misspelt one keeps out the
  // layers it was to let in, as --stage's would.
  {
    std::vector<std::string> written = spec.train_state.stage;
    std::erase_if(written, [&](const std::string& s) {
      return std::find(opt.stages.begin(), opt.stages.end(), s) != opt.stages.end();
    });
    const auto where = [&](const char* key) {
      const Node* n = root->find(key);
      return n && !n->mark().str().empty() ? n->mark().str() + ": " + key : std::string(key);
    };
    if (const std::string unnamed = net_spec.stages_no_rule_names(written); !unnamed.empty())
      spdlog::warn("{}: {}", where("train_state"), unnamed);
    for (const NetStateSetting& test : spec.test_state)
      if (const std::string unnamed = net_spec.stages_no_rule_names(test.stage); !unnamed.empty())
        spdlog::warn("{}: {}", where("test_state"), unnamed);
  }
  // The solver's `weights` files, found as its net is (beside it, then from the working
  // directory); one that is not there is refused at its line.
  const auto solver_weights = [&] {
    std::vector<std::string> found;
    for (size_t i = 0; i < spec.weights.size(); ++i) {
      std::string looked;
      const auto file = io::find_beside_solver(spec.weights[i], opt.solver, &looked);
      if (!file)
        throw ConfigError(spec.weights_marks[i], "weights",
                          "'" + spec.weights[i] + "' not found (looked for " + looked +
                              "); give a .caffemodel or .caffemodel.h5 file");
      found.push_back(*file);
    }
    return found;
  };
  if (!opt.reinit.empty() && opt.weights.empty() && spec.weights.empty())
    throw ConfigError(Mark{}, "",
                      "--reinit applies to layers loaded with --weights (or the solver's weights); give --weights too");
  if (!opt.resume && opt.snapshot.empty()) (void)solver_weights();  // a fresh run: said before anything is made
  const std::string prefix = snapshot_prefix(spec.snapshot_prefix, opt.solver);
  Mark prefix_mark = spec.snapshot_prefix_mark;  // unset: the prefix comes from the solver's file name
  if (!prefix_mark.file && spec.snapshot_prefix.empty()) prefix_mark.file = std::make_shared<std::string>(opt.solver);
  ensure_snapshots_writable(prefix, spec.max_iter, prefix_mark);
  // One run per prefix: two would overwrite each other's snapshots and metrics, and --resume
  // would take up a mixture (a job submitted twice; a requeued job whose first instance is
  // still running). Taken before the device is: a second run on an exclusive-mode GPU is told
  // this, not that the device is busy.
  const std::string holder = run_holder(opt.solver);
  io::FileLock lock(prefix + ".lock", holder);
  const app::BeforeForcedExit let_go_of_lock([&lock] { lock.release(); });  // past a reader stuck in a read
  if (lock.state() == io::FileLock::State::taken)
    throw Error("another crema run is training under the prefix '" + prefix + "' (" +
                (lock.holder_found().empty() ? "it holds " + lock.path() : lock.holder_found()) +
                "); two would overwrite each other's snapshots and metrics. Wait for it to finish or stop it (it "
                "stops with a snapshot, and --resume continues it), or give this run a prefix of its own (--set " +
                shell_quote("snapshot_prefix=" + prefix + "_2") + "). If that run is gone (its host crashed), remove " +
                lock.path());
  if (lock.state() == io::FileLock::State::unsupported)
    spdlog::warn("cannot lock {} ({}): nothing keeps another run from training under the prefix '{}' at the same time",
                 lock.path(), lock.why(), prefix);
  if (!lock.left_by().empty())
    spdlog::info("{} was left by a run that ended without letting go of it ({}); taken over", lock.path(),
                 lock.left_by());
  if (lock.state() == io::FileLock::State::held) remove_unfinished_snapshots(prefix);
  auto ctx = make_context(opt.gpu, spec);
  // This run's --set and --unset arguments and device, for the commands printed to the user; a command
  // that sets its own snapshot_prefix leaves the run's out.
  auto run_flags = [&](bool without_prefix) {
    std::string flags;
    for (const auto& o : opt.overrides)
      if (o.rfind('~', 0) == 0)  // an --unset (io::apply_override)
        flags += " --unset " + shell_quote(o.substr(1));
      else if (!without_prefix || o.rfind("snapshot_prefix=", 0) != 0)
        flags += " --set " + shell_quote(o);
    if (ctx->on_gpu()) flags += " --gpu " + std::to_string(ctx->device().id);
    // On a CPU the thread count orders the sums: a resume with another is not bit for bit.
    if (opt.threads > 0 && !ctx->on_gpu()) flags += " --threads " + std::to_string(opt.threads);
    return flags;
  };
  const std::string overrides = run_flags(false);
  // --stage/--level, for the train commands printed (crema test's would act on the TEST net).
  std::string train_state_flags;
  if (!opt.stages.empty())
    train_state_flags += " --stage " + shell_quote(fmt::format("{}", fmt::join(opt.stages, ",")));
  if (opt.level) train_state_flags += " --level " + std::to_string(*opt.level);
  // The solver as a train command's argument: "-x.yaml" would read as an option.
  const std::string solver_arg = shell_quote(opt.solver.rfind('-', 0) == 0 ? "./" + opt.solver : opt.solver);
  const auto resume_command = [&](const std::string& state) {
    return "crema train " + solver_arg + overrides + train_state_flags + " --snapshot " + shell_quote(state);
  };
  if (spec.precision == Precision::tf32 && !ctx->on_gpu())
    throw ConfigError(spec.precision_mark, "precision",
                      "tf32 runs on a GPU's tensor cores; train with solver_mode: GPU (or --gpu N), or use "
                      "precision: fp32 (or bf16 on a CPU with AVX512-BF16 or AMX)");
  ctx->set_precision(spec.precision);
  // What orders this run's sums, kept with its snapshots: a resume in another order goes on
  // as an uninterrupted run to within rounding, not bit for bit.
  const int threads = num_threads();
  const std::string compute = ctx->on_gpu()
                                  ? std::string("a GPU")
                                  : "the CPU with " + std::to_string(threads) + (threads == 1 ? " thread" : " threads");
  spdlog::info(
      "Using {}{}{}", ctx->device().str(),
      spec.random_seed >= 0 ? ", random_seed " + std::to_string(spec.random_seed)
      // A resume takes its random state from the snapshot, not from this seed.
      : opt.resume || !opt.snapshot.empty()
          ? fmt::format(", random_seed {} (drawn from the clock)", ctx->seed())
          : fmt::format(", random_seed {} (drawn from the clock; random_seed: {} draws the same numbers again)",
                        ctx->seed(), ctx->seed()),
      spec.precision != Precision::fp32 ? std::string(", precision ") + precision_name(spec.precision) : "");

  // Before the nets are built: which snapshot this run resumes from, and whether a fresh
  // start would overwrite another run's.
  const std::vector<io::SnapshotOnDisk> earlier = io::snapshots_on_disk(prefix);
  const std::string snapshot =
      opt.resume ? latest_to_resume(earlier, prefix, opt, !spec.weights.empty()) : opt.snapshot;
  std::string resumed_weights;  // the weights file of the snapshot, once its state is read
  if (snapshot.empty() && !earlier.empty() && !opt.overwrite) {
    // A mistake in the config first: fixed after the way on was taken, it would meet the
    // user only on the next try.
    const NetState train_state = spec.train_net_state(net_spec);
    net_spec.check_layer_params(&train_state);
    throw ConfigError(prefix_mark, "snapshot_prefix", earlier_run_message(earlier, prefix, opt.resume));
  }
  // A fresh run starts from the solver's `weights` (Caffe's key), then --weights: later files
  // override earlier ones, as Caffe adds --weights to the solver's list.
  std::vector<std::string> weights;
  if (snapshot.empty()) {
    weights = solver_weights();
    weights.insert(weights.end(), opt.weights.begin(), opt.weights.end());
  }
  if (opt.overwrite)
    for (size_t i = 0; i < weights.size(); ++i)
      for (const io::SnapshotOnDisk& s : earlier) {
        std::error_code ec;
        if (s.weights.empty() || !fs::equivalent(weights[i], s.weights, ec)) continue;
        const bool listed = i < spec.weights.size();  // by the solver, not by --weights
        const std::string what = "'" + weights[i] + "' is a snapshot of the earlier run that --overwrite deletes; ";
        if (listed)
          throw ConfigError(spec.weights_marks[i], "weights",
                            what + "start from it under a prefix of its own: --set " +
                                shell_quote("snapshot_prefix=" + prefix + "_2"));
        throw ConfigError(Mark{}, "--weights",
                          what + "start from it under a prefix of its own: --weights " + shell_quote(weights[i]) +
                              " --set " + shell_quote("snapshot_prefix=" + prefix + "_2"));
      }

  Solver solver(spec, net_spec, *ctx);
  if (!reads_data(solver.net())) {
    const std::string why =
        "the TRAIN net has no data layer (Data, ImageData, HDF5Data, DummyData, …): an Input layer's tops stay zeros, "
        "so there is nothing to learn from; add a data layer with include: {phase: TRAIN} (Input describes a "
        "deployed net's input)";
    for (int i = 0; i < solver.net().num_layers(); ++i)
      if (std::string(solver.net().layer(i).type()) == "Input") solver.net().layer(i).spec().fail(why);
  }
  // Room for one snapshot (the weights, and the solver state with its history), checked once:
  // a cluster job learns at its start, not hours later at its first snapshot, that the disk
  // cannot take one. Only a warning: space may be freed meanwhile.
  if (spec.snapshot > 0 || spec.snapshot_after_train) {
    const double needed = 4.0 * static_cast<double>(solver.net().num_parameters() * (spec.snapshot_diff ? 2 : 1) +
                                                    solver.history_count());
    const std::string dir = fs::path(prefix).parent_path().string();
    if (const auto left = io::free_bytes(dir); left && static_cast<double>(*left) < needed)
      spdlog::warn(
          "snapshot_prefix: the file system of '{}' has {:.1f} MiB free, less than a snapshot of this run needs (about "
          "{:.1f} MiB of weights and solver state); snapshots will fail unless space is freed",
          dir.empty() ? "." : dir, static_cast<double>(*left) / (1 << 20), needed / (1 << 20));
  }
  const std::string config_yaml = io::to_yaml(*root);
  std::string last_state, last_weights;  // the files of the latest snapshot this run wrote
  int last_snapshot_iter = -1;
  int resumed_iter = -1;  // the iteration of --snapshot, once restored
  // The folder was made at start; a clean-up job may have removed it since (the weights in
  // memory are then all there is of the run), and the lock file with it: without it a second
  // run could start under this prefix. Checked before each snapshot and, at most once a
  // second, at the solver's polls (stat calls cost on a network file system).
  bool lock_to_retake = false;  // removed, and taking it again failed: tried again later
  auto last_kept = std::chrono::steady_clock::now();
  const auto keep_prefix = [&](bool now) {
    const auto at = std::chrono::steady_clock::now();
    if (!now && at - last_kept < std::chrono::seconds(1)) return;
    last_kept = at;
    std::error_code ec;
    const fs::path dir = fs::path(prefix).parent_path();
    if (!dir.empty() && !fs::exists(dir, ec) && fs::create_directories(dir, ec))
      spdlog::warn("the snapshot folder '{}' was removed during the run (a clean-up job?); made again", dir.string());
    if (!lock.lost() && !lock_to_retake) return;
    const bool retry = std::exchange(lock_to_retake, false);
    lock.take_again(holder);
    if (lock.state() == io::FileLock::State::held) {
      spdlog::warn("{} was removed during the run; taken again", lock.path());
    } else if (lock.state() == io::FileLock::State::taken) {
      spdlog::warn(
          "{} was removed during the run, and another run took it since ({}): the two overwrite each other's "
          "snapshots and metrics under the prefix '{}'; stop one of them",
          lock.path(), lock.holder_found().empty() ? "its holder is not named" : lock.holder_found(), prefix);
    } else {
      lock_to_retake = true;
      if (!retry)
        spdlog::warn(
            "{} was removed during the run and cannot be made again now ({}): until it is, nothing keeps another run "
            "from training under the prefix '{}'",
            lock.path(), lock.why(), prefix);
    }
  };
  solver.on_snapshot = [&](Solver& s) {
    const std::string base = io::snapshot_base(prefix, s.iter());
    const std::vector<Net*> test_nets = solver_test_nets(s);
    const auto save = [&] {
      keep_prefix(true);
      spdlog::info("Snapshotting to HDF5 file {}.caffemodel.h5", base);
      spdlog::info("Snapshotting solver state to HDF5 file {}.solverstate.h5", base);
      io::save_snapshot(s.net(), spec.snapshot_diff, {test_nets.begin(), test_nets.end()}, s.state(), config_yaml,
                        compute, base + ".caffemodel.h5", base + ".solverstate.h5");
    };
    try {
      save();
    } catch (const Error&) {
      // The folder removed while the snapshot was written: made again, and written again.
      std::error_code ec;
      if (const fs::path dir = fs::path(prefix).parent_path(); dir.empty() || fs::exists(dir, ec)) throw;
      save();
    }
    last_state = base + ".solverstate.h5";
    last_weights = base + ".caffemodel.h5";
    last_snapshot_iter = s.iter();
    note_snapshot_written(s.iter());
    if (spec.snapshot_keep > 0) prune_snapshots(prefix, s.iter(), spec.snapshot_keep);
  };
  // --time-limit stops as a scheduler's SIGTERM does, but while there is still time to
  // write the snapshot (a scheduler kills a few seconds after its SIGTERM).
  bool time_is_up = false;
  int start_iter = 0;  // where solve() starts (the snapshot's iteration when resumed)
  const auto seconds_since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // A limit that passes before the run finishes an iteration (in its setup, or the test pass
  // it starts with) would stop every requeued job at the same place: an error, thrown before
  // a snapshot of no progress is written.
  const auto no_progress = [&] {
    return Error("--time-limit " + opt.time_limit + " passed before this run finished an iteration (in its setup, " +
                 "waiting for its first batch, " + (spec.iter_size > 1 ? "" : "or ") + "the test pass at iteration " +
                 std::to_string(start_iter) +
                 (spec.iter_size > 1 ? ", or that iteration's " + std::to_string(spec.iter_size) + " passes (iter_size)"
                                     : std::string()) +
                 "), so it made no progress, and a requeued job would do the same; raise --time-limit");
  };
  // Once the pace is known, whether the limit cuts the run short is said once, so that a job's
  // owner learns it at the start rather than at the stop. The pace counts from the end of the
  // first iteration, past setup, the opening test pass and the first step's warm-up (later
  // test passes in the window count).
  std::optional<std::pair<double, int>> pace_from;  // (seconds since the start, iteration)
  bool pace_told = false;
  // Test passes at iterations from..to (the final one, at max_iter, runs after the last step).
  const auto tests_among = [&](int from, int to) {
    if (spec.test_interval <= 0 || spec.test_iter.empty() || to < from) return 0;
    const int every = spec.test_interval;
    int n = to / every - (from > 0 ? (from - 1) / every : -1);
    if (from == 0 && !spec.test_initialization) --n;
    return n;
  };
  int pace_seen_iter = -1;  // tell_pace looks once per iteration, at its start
  const auto tell_pace = [&](double elapsed) {
    // Only at the first poll of an iteration (before its test pass): a poll between its
    // passes or between test batches would find a test pass done or half done.
    if (pace_told || solver.iter() <= start_iter || solver.iter() >= spec.max_iter ||
        std::exchange(pace_seen_iter, solver.iter()) == solver.iter())
      return;
    if (!pace_from) pace_from = {elapsed, solver.iter()};
    const int done = solver.iter() - pace_from->second;
    const double spent = elapsed - pace_from->first;
    if (done < 10 || spent < std::min(30.0, opt.time_limit_s / 20.0)) return;
    pace_told = true;
    // Test passes are counted at the time the latest took (the display's time left counts
    // them too): a pace of training steps alone once said a run fit that the limit then cut.
    // None timed yet (a resumed run, test_initialization: false): said, not counted.
    const int iters_left = spec.max_iter - solver.iter();
    const int tests_left =
        tests_among(solver.iter(), spec.max_iter - 1) +
        (spec.test_interval > 0 && !spec.test_iter.empty() && spec.max_iter % spec.test_interval == 0);
    const double per_test = solver.test_seconds();
    const double tests_done = tests_among(pace_from->second, solver.iter() - 1);
    const double per_iter = std::max(0.0, spent - tests_done * per_test) / done;
    const double needed = per_iter * iters_left + tests_left * per_test;
    const double left = static_cast<double>(opt.time_limit_s) - elapsed;
    std::string pace = fmt::format("at {:.3g} s per iteration", per_iter);
    if (tests_left > 0 && per_test > 0)
      pace += fmt::format(" and {:.3g} s per test pass ({} to go)", per_test, tests_left);
    else if (tests_left > 0)
      pace += fmt::format(" ({} test passes to go, not timed yet, not counted)", tests_left);
    if (needed <= left) {
      spdlog::info("--time-limit {}: {} the {} iterations left take about {}, within the {} left", opt.time_limit, pace,
                   iters_left, duration_text(needed), duration_text(left));
      return;
    }
    spdlog::warn(
        "--time-limit {}: {} the {} iterations left take about {}, but the limit comes in {}: expect a stop with a "
        "snapshot near iteration {} of {} (exit status {}; the same command with --resume continues)",
        opt.time_limit, pace, iters_left, duration_text(needed), duration_text(left),
        solver.iter() + static_cast<int>(left / (needed / iters_left)), spec.max_iter, kExitTimeLimit);
  };
  solver.poll_action = [&]() {
    keep_prefix(false);
    const Solver::Action action = poll_signal_action();
    if (time_is_up) return Solver::Action::Stop;
    if (action == Solver::Action::Stop || opt.time_limit_s <= 0) return action;
    const double elapsed = seconds_since_start();
    if (elapsed < static_cast<double>(opt.time_limit_s)) {
      tell_pace(elapsed);
      return action;
    }
    if (solver.iter() == start_iter) throw no_progress();
    time_is_up = true;
    if (solver.iter() >= spec.max_iter)  // in the final test pass: the training is done
      spdlog::warn(
          "--time-limit {} has passed ({:.0f} s since the start) in the final test pass: stopping it; training is "
          "complete (exit status 0), and its final weights can be scored with the command below",
          opt.time_limit, elapsed);
    else
      spdlog::warn(
          "--time-limit {} has passed ({:.0f} s since the start) at iteration {}: stopping with a snapshot (exit "
          "status {}; the same command with --resume continues)",
          opt.time_limit, elapsed, solver.iter(), kExitTimeLimit);
    return Solver::Action::Stop;
  };
  if (opt.time_limit_s > 0)
    spdlog::info("--time-limit {}: training stops with a snapshot once {} s have passed since the start",
                 opt.time_limit, opt.time_limit_s);

  // An image folder's labels are class positions: the TEST nets' folders must hold training's
  // classes, and a resumed run's the classes its snapshots learnt.
  if (const std::string learnt = snapshot.empty() ? "" : classes_beside_snapshot(snapshot); !learnt.empty())
    refuse_other_classes(solver.net(), read_class_names(learnt, "--snapshot"),
                         "in " + learnt + ", of the run being resumed");
  std::vector<int> folders;  // the TRAIN net's layers reading image folders
  for (int i = 0; i < solver.net().num_layers(); ++i)
    if (!solver.net().layer(i).class_names().empty()) folders.push_back(i);
  if (folders.size() == 1)  // with several (a multi-task net), which TEST folder goes with which is not known
    for (const Net* t : solver_test_nets(solver))
      refuse_other_classes(*t, solver.net().layer(folders[0]).class_names(),
                           "of layer '" + solver.net().layer_name(folders[0]) + "' of the TRAIN net");

  if (!snapshot.empty()) {
    spdlog::info("Resuming from {}", snapshot);
    // A damaged snapshot (a disk fault, a copy cut short) would stop every requeued job the
    // same way: the error names the snapshot before it, with the command that resumes it.
    const auto or_earlier = [&](const Error& e) {
      const auto named = io::parse_snapshot_name(snapshot);
      if (!named || named->kind.find("solverstate") == std::string::npos) return Error(e.what());
      const std::vector<io::SnapshotOnDisk> beside = io::snapshots_on_disk(named->prefix);
      for (auto it = beside.rbegin(); it != beside.rend(); ++it)
        if (it->iter < named->iter && !it->state.empty() && !it->weights.empty())
          return Error(std::string(e.what()) + ". The snapshot before it, of iteration " + std::to_string(it->iter) +
                       ", resumes with: " + resume_command(it->state) +
                       (opt.resume ? " (--resume takes the latest, iteration " + std::to_string(named->iter) +
                                         ", for as long as its files are there)"
                                   : ""));
      return Error(e.what());
    };
    io::LoadedState loaded;
    try {
      loaded = io::load_solver_state(snapshot);
      resumed_weights = loaded.weights_path;
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw or_earlier(e);
    }
    std::vector<std::string> missing;
    try {
      missing = load_weight_files(solver.net(), {loaded.weights_path}, {}, true, solver_test_nets(solver));
    } catch (const io::WeightsMismatch& e) {
      std::set<std::string> learnable;  // layers with weights: when none fits, re-learning all is a fresh start
      std::vector<const Net*> nets = {&solver.net()};
      for (const Net* t : solver_test_nets(solver)) nets.push_back(t);
      for (const Net* n : nets)
        for (int i = 0; i < n->num_layers(); ++i)
          if (!n->layer(i).blobs().empty()) learnable.insert(n->layer_name(i));
      if (e.layers().size() >= learnable.size())
        throw Error(std::string(e.what()) +
                    ": none of the snapshot's weights fit this net, so it was written for another one. Resume with "
                    "the net it was written with, or train this one from the start (without --snapshot)");
      // --reinit cannot go with --snapshot: re-learning a layer starts a new run, under a
      // prefix of its own so that it does not overwrite the snapshots it starts from.
      throw Error(std::string(e.what()) +
                  ": the net changed since the snapshot was written. Resume with the net it was written with, or "
                  "start a new run from its weights, re-learning " +
                  (e.layers().size() > 1 ? "those layers" : "that layer") + ": crema train " + solver_arg +
                  run_flags(true) + train_state_flags + " --set " +
                  shell_quote("snapshot_prefix=" + prefix + "_reinit") + " --resume --weights " +
                  shell_quote(loaded.weights_path) + " --reinit " + shell_quote(e.layer_list()));
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw or_earlier(e);  // the weights file damaged
    }
    if (!missing.empty())
      throw Error(loaded.weights_path + " has no weights for layer '" + missing.front() +
                  "': the net changed since the snapshot was written; resume with the same net, or start from "
                  "these weights with --weights");
    try {
      solver.restore(loaded.state);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw Error(snapshot + ": " + e.what());  // which file, wherever restoring it failed
    }
    resumed_iter = solver.iter();
    note_snapshot_written(resumed_iter);  // what a second Ctrl-C leaves, until this run writes one
    warn_later_snapshots(earlier, prefix, resumed_iter);
    if (solver.iter() < spec.max_iter) warn_config_changes(snapshot, loaded.config_yaml, *root);
    if (solver.iter() < spec.max_iter && !loaded.compute.empty() && loaded.compute != compute)
      spdlog::warn(
          "{} was written by a run on {}, and this one runs on {}: its sums come out in another order, so it goes on "
          "as the uninterrupted run would to within rounding, not bit for bit{}",
          snapshot, loaded.compute, compute,
          loaded.compute.rfind("the CPU", 0) == 0 && !ctx->on_gpu() ? " (the snapshot's --threads repeats it exactly)"
                                                                    : "");
    if (solver.iter() >= spec.max_iter) {
      spdlog::info(
          "The snapshot is at iteration {}, at or beyond max_iter {}: nothing left to train (raise it, e.g. "
          "--set max_iter={}, to train on).",
          solver.iter(), spec.max_iter,
          std::min<long long>(std::max(2LL * solver.iter(), solver.iter() + 1LL), INT_MAX));
      return 0;
    }
  } else {
    // Said at the solver's `weights` key when the files all come from there.
    const bool from_solver = opt.weights.empty() && !spec.weights_marks.empty();
    const FineTuning given{from_solver ? spec.weights_marks.front() : Mark{}, from_solver ? "weights" : "--weights"};
    try {
      warn_about_start(solver.net(),
                       load_weight_files(solver.net(), weights, opt.reinit, false, solver_test_nets(solver), &given));
    } catch (const io::WeightsMismatch& e) {
      std::vector<std::string> reinit = opt.reinit;  // the layers already given and these
      reinit.insert(reinit.end(), e.layers().begin(), e.layers().end());
      throw ConfigError(given.mark, given.key,
                        std::string(e.what()) + "; rename the layer in the net, or pass --reinit " +
                            shell_quote(fmt::format("{}", fmt::join(reinit, ","))) + " to re-learn " +
                            (e.layers().size() > 1 ? "them" : "it") + " from the fillers");
    }
  }
  // Past the reads that could block; a forced exit must not cut the deletion short.
  setup_watch.reset();
  {
    std::vector<const Net*> nets{&solver.net()};
    for (Net* test_net : solver_test_nets(solver)) nets.push_back(test_net);
    std::vector<NamedFile> inputs = named_weights(weights, opt.weights.empty() ? "the solver's weights" : "--weights");
    if (!snapshot.empty()) inputs.push_back({snapshot, "the snapshot resumed"});
    if (!resumed_weights.empty()) inputs.push_back({resumed_weights, "the weights of the snapshot resumed"});
    refuse_writing_over_inputs(nets, inputs);
  }
  // Only now, the nets built and the weights loaded: a mistake in the config keeps the files.
  if (opt.overwrite) remove_earlier_run(earlier, prefix);
  write_class_names(solver.net(), prefix);
  warn_names_caffe_cannot_read(solver.net());
  std::unique_ptr<io::MetricsWriter> metrics;
  if (spec.metrics_csv || spec.metrics_tensorboard) {
    metrics = std::make_unique<io::MetricsWriter>(prefix, spec.metrics_csv, spec.metrics_tensorboard,
                                                  static_cast<int>(spec.test_nets()), solver.iter(), !snapshot.empty());
    metrics->announce(spec.display > 0, spec.test_interval > 0 && spec.test_nets() > 0);
    solver.on_metrics = [&metrics](const MetricsRow& row) { metrics->write(row); };
  }
  start_iter = solver.iter();
  if (opt.time_limit_s > 0 && seconds_since_start() >= static_cast<double>(opt.time_limit_s)) throw no_progress();
  // However training ends, the data layers' clean-up waits for their readers, and one may be
  // blocked in a read no signal ends (a stalled network file system, a FIFO nobody writes; the
  // readers work ahead of the solver, so even a finished run can meet one). What is written is
  // kept; that wait must not outlast a scheduler's grace period, nor hide the outcome.
  const auto exit_past_blocked_reader = [&](int status, const std::string& outcome) {
    app::exit_past_blocked_reader(status, outcome, solver.stopped_waiting_for());
  };
  // A bad sample or label, a full disk, a device fault: the snapshots stay, and the message
  // ends with how to go on from the latest once the cause is fixed (a cluster job's log shows
  // the command to run).
  const auto stopped_by = [&](const Error& e) {
    const bool wrote = !last_state.empty();
    std::string what = e.what();
    if (!what.empty() && what.back() == '.') what.pop_back();
    if (!wrote && resumed_iter < 0) {
      exit_past_blocked_reader(1, e.what());
      if (dynamic_cast<const Diverged*>(&e)) return Error(e.what());  // its message already says where it stopped
      return Error(what + ". Training stopped at iteration " + std::to_string(solver.iter()) +
                   ", before its first snapshot");
    }
    Error stopped(what + ". Training stopped at iteration " + std::to_string(solver.iter()) +
                  "; the latest snapshot is of iteration " + std::to_string(wrote ? last_snapshot_iter : resumed_iter) +
                  ". Once the cause is fixed, resume with: " + resume_command(wrote ? last_state : snapshot));
    exit_past_blocked_reader(1, stopped.what());
    return stopped;
  };
  try {
    solver.solve();
  } catch (const ConfigError& e) {
    // A layer refusing its input before anything was trained is a mistake in the config
    // (exit 2); later it refuses what the data gave it (an image of its own size too small for
    // the net), and the run ends as for any other error in the middle of training.
    if (solver.iter() == start_iter) throw;
    throw stopped_by(e);
  } catch (const Error& e) {
    throw stopped_by(e);
  }
  spdlog::info("Peak resident memory: {:.1f} MiB", peak_rss_mib());
  const int status = [&] {
    if (solver.stopped_early() && solver.iter() >= spec.max_iter) {
      // Every iteration ran: a resume would have nothing to train. Say where the final
      // weights are and, if the final test was due, the command that scores them.
      const bool final_test_due =
          spec.test_interval > 0 && spec.max_iter % spec.test_interval == 0 && !spec.test_iter.empty();
      // A stop always leaves the final weights (the solver writes them if snapshot_after_train
      // did not), in last_weights.
      if (!final_test_due)
        spdlog::info("Training reached its last iteration, {}, as the stop came; the weights are in {}.", solver.iter(),
                     last_weights);
      else
        spdlog::info(
            "Training reached its last iteration, {}, but the final test was not run. Score its weights with: "
            "crema test --model {} --weights {} --iterations {}{}",
            solver.iter(), shell_quote(opt.solver), shell_quote(last_weights), spec.test_iter.front(), overrides);
    } else if (solver.stopped_early()) {
      spdlog::info("Training stopped at iteration {}; snapshot written.", solver.iter());
      spdlog::info("Resume with: {}", resume_command(last_state));
      if (time_is_up) return kExitTimeLimit;  // not finished: a job script requeues on this status
    }
    return 0;
  }();
  // What output layers (HDF5Output) wrote is published now, where a failure still sets the
  // exit status (1: the run's outcome, resume command included, is said above).
  try {
    solver.net().finish();
    for (Net* test_net : solver_test_nets(solver)) test_net->finish();
  } catch (const Error& e) {
    exit_past_blocked_reader(1, e.what());
    throw;
  }
  exit_past_blocked_reader(
      status, last_snapshot_iter == solver.iter()
                  ? "Training ended at iteration " + std::to_string(solver.iter()) + " with its snapshot written"
                  : "Training ended at iteration " + std::to_string(solver.iter()));
  return status;
}

namespace {

// The net `crema test` scores and `crema extract-features` reads, with what it needs.
struct TestNet {
  std::shared_ptr<Node> root, solver;  // the layers' specs point into these
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Net> net;
};

// The TEST net of a net or solver file as training built its first one (the solver's
// test_state), or from the net's own state; --stage/--level on top, as Caffe's `caffe
// test`; with its weights, and a data layer that reads data. `command` and `purpose`
// ("score", "extract features from") name what it is for in messages.
TestNet build_test_net(const TestOptions& opt, const std::string& command, const std::string& purpose) {
  TestNet t;
  t.root = io::load_net_config(opt.model, &t.solver, opt.overrides);
  const NetSpec spec = NetSpec::parse(*t.root);
  const std::optional<SolverSpec> solver_spec = t.solver ? std::optional(SolverSpec::parse(*t.solver)) : std::nullopt;
  t.ctx = make_context(opt.gpu, 1701);
  // A solver file's precision too, so the scores are those its training's tests print.
  if (solver_spec) apply_solver_precision(*t.ctx, *solver_spec, "testing");
  const NetState base = solver_spec ? solver_spec->test_net_state(spec, 0) : spec.state_for(Phase::TEST);
  const NetState state = merged(base, NetStateSetting{std::nullopt, opt.level, opt.stages});
  if (const std::string unnamed = spec.stages_no_rule_names(opt.stages); !unnamed.empty())
    spdlog::warn("--stage: {}", unnamed);
  spec.check_layer_params(&state);  // the keys of the TRAIN-only layers too (a typo there passed)
  t.net = std::make_unique<Net>(spec, state, *t.ctx);
  Net& net = *t.net;
  if (opt.weights.empty()) spdlog::warn("no --weights given: the parameters are freshly initialised");
  try {
    std::vector<std::string> renamed;
    const std::vector<std::string> kept = load_weight_files(net, opt.weights, {}, false, {}, nullptr, &renamed);
    io::refuse_unloaded(kept, opt.weights, renamed);
  } catch (const io::WeightsMismatch& e) {
    io::refuse_other_net(e);
  }
  // The scores of an image folder with other classes than training's would all be wrong.
  if (const std::string learnt = opt.weights.empty() ? "" : classes_beside_snapshot(opt.weights.back());
      !learnt.empty())
    refuse_other_classes(net, read_class_names(learnt, "--weights"),
                         "in " + learnt + ", written beside the weights by training");
  if (!reads_data(net))
    throw ConfigError(Mark{}, "--model",
                      "the TEST net of '" + opt.model +
                          "' has no data layer (Data, ImageData, HDF5Data, …), so there is nothing to " + purpose +
                          "; give the net with its TEST data layer (to label images with a deploy net, use crema "
                          "classify)");
  refuse_writing_over_inputs({&net}, named_weights(opt.weights, "--weights"));
  note_pass_coverage(net, opt.iterations, "--iterations", command, /*scored=*/command == "crema test");
  return t;
}

// Before each batch of a pass over a TEST net (crema test, extract-features): whether a
// signal asked for a stop, or one came while the batch's data was awaited. A reader stuck in
// a read (a stalled file system) does not hold the stop up: its data layer is put in `stuck`.
bool pass_stopped(Net& net, std::string& stuck) {
  const auto stop = [] { return poll_signal_action() == Solver::Action::Stop; };
  return stop() || !(stuck = net.await_data(1, stop)).empty();
}

// Ends a pass a stop interrupted with the error `what`, exit status 1. It is printed once the
// net is gone, and a stuck reader (its data layer `stuck`) may keep it from going.
[[noreturn]] void end_interrupted_pass(const std::string& what, const std::string& stuck) {
  exit_past_blocked_reader(1, what, stuck);
  throw Error(what);
}

}  // namespace

namespace {

// The first layer that reads samples (whose count a pass reports: a net's other readers
// skip alike), or -1.
int first_data_layer(const Net& net) {
  for (int i = 0; i < net.num_layers(); ++i)
    if (net.layer(i).data_stats().samples >= 0) return i;
  return -1;
}

// After a pass whose first data layer gave `read` samples: the bad samples skipped (each named
// in a warning when met) have no part in it, and a pass that read more than the source's good
// samples went round them, which the count said before the pass could not know.
void report_bad_samples(const Net& net, int64_t read, bool written) {
  const int first = first_data_layer(net);
  if (first < 0) return;
  const Layer::DataStats stats = net.layer(first).data_stats();
  const int64_t source = stats.samples, bad = stats.bad_samples;
  if (bad == 0) return;
  const int64_t good = source - bad;
  if (read > good)
    spdlog::warn(
        "{} bad sample(s) were skipped (each named in a warning above), leaving {} good sample(s) of the {} in the "
        "source, and the pass read {}: {}",
        bad, good, source, read,
        written ? fmt::format("the rows after the first {} repeat earlier ones; lower --iterations to write each "
                              "sample once, or mend the samples",
                              good)
                : "some samples weigh more than others in the scores");
  else
    spdlog::warn("{} bad sample(s) were skipped (each named in a warning above){}", bad,
                 written ? ": they have no rows" : ": the scores leave them out");
}

// The samples a batch of the net's first data layer gave.
int64_t batch_samples(const Net& net) {
  const int first = first_data_layer(net);
  if (first < 0 || net.top_vec(first).empty() || net.top_vec(first)[0]->num_axes() == 0) return 0;
  return net.top_vec(first)[0]->shape(0);
}

}  // namespace

int test(const TestOptions& opt) {
  const TestNet t = build_test_net(opt, "crema test", "score");
  Net& net = *t.net;
  net.refuse_size_following_outputs("crema test");
  log_memory_plan(net.reuse_activation_memory());  // only the outputs are read
  // Ctrl-C, SIGTERM, …: stop between batches and say the scores of those done (a long pass
  // killed outright said nothing), marked as partial; output layers put the rows of those in place.
  install_signal_handlers(default_signal_effects(), false);
  std::vector<double> sums;
  double loss = 0;  // the weighted total, as Caffe's `caffe test` prints it
  int done = 0;
  int64_t read = 0;
  std::string stuck;
  for (; done < opt.iterations; ++done) {
    if (pass_stopped(net, stuck)) break;
    loss += net.forward(*t.ctx);
    read += batch_samples(net);
    size_t k = 0;
    for (size_t j = 0; j < net.outputs().size(); ++j) {
      const Blob* out = net.outputs()[j];
      for (int e = 0; e < out->count(); ++e, ++k) {
        if (sums.size() <= k) sums.push_back(0);
        sums[k] += out->cpu_data()[e];
        spdlog::info("Batch {}, {} = {}", done, net.output_names()[j], out->cpu_data()[e]);
      }
    }
  }
  if (done > 0) spdlog::info("Loss: {:.6g}", loss / done);
  size_t k = 0;
  for (size_t j = 0; done > 0 && j < net.outputs().size(); ++j) {
    const float w = net.output_loss_weight(j);
    for (int e = 0; e < net.outputs()[j]->count(); ++e, ++k) {
      const double mean = sums[k] / done;
      if (w != 0.f)
        spdlog::info("{} = {:.6g} (* {} = {:.6g} loss)", net.output_names()[j], mean, w, w * mean);
      else
        spdlog::info("{} = {:.6g}", net.output_names()[j], mean);
    }
  }
  report_bad_samples(net, read, false);
  if (done < opt.iterations)
    end_interrupted_pass("interrupted after " + std::to_string(done) + " of " + std::to_string(opt.iterations) +
                             " batches" +
                             (done == 1  ? ": the scores above are of that one batch only"
                              : done > 1 ? ": the scores above are of those " + std::to_string(done) + " batches only"
                                         : ""),
                         stuck);
  net.finish();
  return 0;
}

namespace {

// What extract-features writes at least (4 bytes a value, from the blobs' shapes at setup,
// without the files' own overhead), per file system, against the space free there: a pass
// that would fill the disk is said before it starts, not when the disk is full hours later.
// Only a warning, as for training's snapshots: space may be freed meanwhile, and some file
// systems (FUSE mounts, quotas, compression) report free space that means little.
void warn_filling_the_disk(const ExtractOptions& opt, const std::vector<const Blob*>& blobs) {
  struct Need {
    double bytes = 0;
    unsigned long long free = 0;
    std::string folder;
  };
  std::map<dev_t, Need> by_device;
  for (size_t k = 0; k < blobs.size(); ++k) {
    const std::string& out = opt.outputs[opt.outputs.size() == 1 ? 0 : k];
    std::string folder = fs::path(out).parent_path().string();
    if (folder.empty()) folder = ".";
    struct stat st {};
    const auto free = io::free_bytes(folder);
    if (!free || ::stat(folder.c_str(), &st) != 0) continue;  // the write will say what is wrong
    Need& need = by_device[st.st_dev];
    need.bytes += 4.0 * static_cast<double>(blobs[k]->count()) * opt.net.iterations;
    need.free = *free;
    need.folder = folder;
  }
  for (const auto& [device, need] : by_device)
    if (need.bytes > static_cast<double>(need.free))
      spdlog::warn(
          "extract-features will write at least {:.1f} GB ({} batches of {}) to '{}', whose file system has {:.1f} GB "
          "free: it will fail when the disk is full unless space is freed; write elsewhere (-o), or lower "
          "--iterations",
          need.bytes / 1e9, opt.net.iterations, fmt::join(opt.blobs, ", "), need.folder,
          static_cast<double>(need.free) / 1e9);
}

}  // namespace

int extract_features(const ExtractOptions& opt) {
  const auto is_h5 = [](const std::string& name) {
    return io::ends_with_nocase(name, ".h5") || io::ends_with_nocase(name, ".hdf5");
  };
  // The outputs and the blob list first: before the net is built and the weights read.
  const bool hdf5 = opt.outputs.size() == 1 && is_h5(opt.outputs[0]);
  if (!hdf5 && std::any_of(opt.outputs.begin(), opt.outputs.end(), is_h5))
    throw ConfigError(Mark{}, "--output", "one HDF5 file holds every blob: give -o FEATURES.h5 alone");
  if (!hdf5 && opt.outputs.size() != opt.blobs.size())
    throw ConfigError(Mark{}, "--output",
                      "give one HDF5 file (-o FEATURES.h5) for all the blobs, or one LMDB folder per blob: --blobs "
                      "names " +
                          std::to_string(opt.blobs.size()) + ", -o " + std::to_string(opt.outputs.size()));
  for (size_t i = 0; i < opt.blobs.size(); ++i)
    if (std::find(opt.blobs.begin(), opt.blobs.begin() + static_cast<long>(i), opt.blobs[i]) !=
        opt.blobs.begin() + static_cast<long>(i))
      throw ConfigError(Mark{}, "--blobs", "names blob '" + opt.blobs[i] + "' twice");
  for (size_t k = 0; k < opt.outputs.size(); ++k) {
    const std::string& out = opt.outputs[k];
    std::error_code ec;
    for (size_t earlier = 0; earlier < k; ++earlier)
      if (io::resolved_path(out) == io::resolved_path(opt.outputs[earlier]))
        throw ConfigError(Mark{}, "--output", "'" + out + "' is named twice; give each blob a database of its own");
    if (fs::exists(out, ec))
      throw ConfigError(Mark{}, "--output",
                        "'" + out + "' already exists; extract-features writes a new " + (hdf5 ? "file" : "database") +
                            ": remove it or choose another name");
    if (auto problem = io::missing_folder(out)) throw ConfigError(Mark{}, "--output", *problem);
  }

  const TestNet t = build_test_net(opt.net, "crema extract-features", "extract features from");
  Net& net = *t.net;
  std::vector<const Blob*> blobs;
  for (const auto& name : opt.blobs) {
    const Blob* b = net.blob(name);
    if (!b)
      throw ConfigError(
          Mark{}, "--blobs",
          "names blob '" + name + "', which the TEST net does not have" + did_you_mean(name, net.blob_names()));
    if (b->num_axes() < 1)
      throw ConfigError(Mark{}, "--blobs",
                        "blob '" + name +
                            "' is a scalar (a loss, say), with no row per sample; name a blob whose "
                            "first axis is the batch");
    blobs.push_back(b);
  }
  warn_filling_the_disk(opt, blobs);
  // Ctrl-C, SIGTERM, …: stop between batches, so that the drafts are removed (a long pass
  // killed outright would leave them).
  install_signal_handlers(default_signal_effects(), false);
  spdlog::info("Extracting {} from {} batches", fmt::join(opt.blobs, ", "), opt.net.iterations);
  // Runs the batches; after each, `write(k, blob)` for the k-th blob of --blobs.
  const auto run = [&](const auto& write) {
    for (int i = 0; i < opt.net.iterations; ++i) {
      if (std::string stuck; pass_stopped(net, stuck))
        end_interrupted_pass("interrupted after " + std::to_string(i) + " of " + std::to_string(opt.net.iterations) +
                                 " batches; nothing was written to " + fmt::format("{}", fmt::join(opt.outputs, ", ")),
                             stuck);
      net.forward(*t.ctx);
      for (size_t k = 0; k < blobs.size(); ++k) write(k, blobs[k]);
    }
  };
  long long samples = 0;
  if (hdf5) {
    io::write_atomically(opt.outputs[0], [&](const std::string& tmp) {
      io::H5File file(tmp, io::H5File::Mode::Create);
      std::vector<std::vector<int>> first(blobs.size());
      run([&](size_t k, const Blob* b) {
        // A dataset's rows have one shape; a net fed images of their own size (batch_size 1,
        // no crop) gives each its own.
        if (first[k].empty()) first[k] = b->shape();
        if (!std::equal(first[k].begin() + 1, first[k].end(), b->shape().begin() + 1, b->shape().end()))
          throw Error("blob '" + opt.blobs[k] + "' is " + b->shape_string() + " in this batch but was " +
                      shape_string(first[k]) +
                      " in the first: an HDF5 dataset holds rows of one shape; write one LMDB per blob (-o FOLDER "
                      "for each), whose records keep their own shapes, or give the images one size");
        // (N, ...): one row per sample; '/' in a blob name would open a group.
        io::append_rows(file, io::escape_h5_name(opt.blobs[k]), b->shape(), b->cpu_data());
        if (k == 0) samples += b->shape(0);
      });
      file.flush();
    });
  } else {
    io::LmdbDrafts dbs(opt.outputs);  // moved into place only once all are complete
    io::Datum datum;
    std::vector<long long> next(blobs.size(), 0);
    run([&](size_t k, const Blob* b) {
      // Caffe's legacy channels/height/width: (N, C, H, W), (N, C) as C x 1 x 1, and
      // anything of more axes as its per-sample count x 1 x 1.
      const int axes = b->num_axes(), rows = b->shape(0), per = b->count(1);
      datum.channels = axes > 4 ? per : axes > 1 ? b->shape(1) : 1;
      datum.height = axes == 3 || axes == 4 ? b->shape(2) : 1;
      datum.width = axes == 4 ? b->shape(3) : 1;
      for (int n = 0; n < rows; ++n) {
        const float* row = b->cpu_data() + static_cast<long long>(n) * per;  // (per)
        datum.float_data.assign(row, row + per);
        dbs[k].put(fmt::format("{:010d}", next[k]++), io::encode_datum(datum));
      }
      if (k == 0) samples += rows;
    });
    dbs.publish();
  }
  std::string what;
  for (size_t k = 0; k < blobs.size(); ++k)
    what += (what.empty() ? "" : ", ") + opt.blobs[k] + " " + blobs[k]->shape_string();
  spdlog::info("Wrote {} samples ({} batches) of {} to {}", samples, opt.net.iterations, what,
               fmt::join(opt.outputs, ", "));
  report_bad_samples(net, samples, true);
  t.net->finish();
  return 0;
}

int time(const TimeOptions& opt) {
  std::shared_ptr<Node> solver;
  auto root = io::load_net_config(opt.model, &solver, opt.overrides);
  const NetSpec spec = NetSpec::parse(*root);
  const Phase phase = opt.phase == "TEST" ? Phase::TEST : Phase::TRAIN;
  const NetState state = spec.state_for(phase);
  spec.check_layer_params(&state);  // the keys of the other phase's layers too
  auto ctx = make_context(opt.gpu, 1701);
  if (opt.precision == "tf32" && !ctx->on_gpu())
    throw ConfigError(Mark{}, "", "--precision tf32 runs on a GPU's tensor cores; give --gpu N too");
  if (!opt.precision.empty())
    ctx->set_precision(precision_from_name(opt.precision));
  else if (solver)  // a solver file is timed as it trains
    apply_solver_precision(*ctx, SolverSpec::parse(*solver), "timing");
  spdlog::info("Timing the {} phase in {} on the {}", phase == Phase::TEST ? "TEST" : "TRAIN",
               precision_name(ctx->precision()),
               ctx->on_gpu() ? "GPU" : "CPU with " + std::to_string(num_threads()) + " thread(s)");
  Net net(spec, state, *ctx);
  // The timing passes are no outputs, whichever way the command ends: an HDF5Output file keeps
  // what it held.
  struct Abandon {
    Net& net;
    ~Abandon() { net.abandon(); }
  } abandon{net};
  // Averages over no layers read as a measurement of a fast net.
  if (net.num_layers() == 0)
    throw ConfigError(Mark{}, "--model",
                      "the " + std::string(phase == Phase::TEST ? "TEST" : "TRAIN") + " net of '" + opt.model +
                          "' has no layers, so there is nothing to time; check its `layer:` list and its include/"
                          "exclude rules (--phase picks the net)");
  if (phase == Phase::TRAIN) {
    bool backward = false;
    for (int i = 0; i < net.num_layers(); ++i) backward |= net.layer_needs_backward(i);
    // As in Caffe, only what feeds a loss computes gradients: a deploy net's backward
    // times come out near zero, which reads like a measurement.
    if (!backward)
      spdlog::warn(
          "No layer of this net computes a gradient (it has no loss, as a deploy net, or nothing before its loss "
          "learns), so the backward times below are of nothing; add `force_backward: true` to the net, or time the "
          "training net, to time them");
  }
  using clock = std::chrono::steady_clock;
  // On a GPU a layer's call only queues its kernels: waiting for them before each reading
  // charges every layer its own work (Caffe's timer does the same with CUDA events).
  auto now = [&ctx] {
    if (ctx->on_gpu() && ctx->cuda()) ctx->cuda()->synchronize();
    return clock::now();
  };
  auto ms_since = [&now](clock::time_point t) { return std::chrono::duration<double, std::milli>(now() - t).count(); };
  spdlog::info("Performing Forward");
  net.forward(*ctx);  // warm-up
  if (phase == Phase::TRAIN) net.backward(*ctx);
  const int n = net.num_layers();
  std::vector<double> fwd(static_cast<size_t>(n), 0.0), bwd(static_cast<size_t>(n), 0.0);
  double total_fwd = 0, total_bwd = 0;
  const auto start = now();
  for (int it = 0; it < opt.iterations; ++it) {
    const auto iter_start = now();
    // Training's update writes the weights, which `time` does not run: marking them
    // written as it would makes the layers that keep a copy of them made from their
    // values (a bf16 InnerProduct's rounded weights) make it again each iteration.
    if (phase == Phase::TRAIN)
      for (size_t j = 0; j < net.learnable_params().size(); ++j) {
        if (net.params_lr()[j] == 0.f) continue;  // frozen: the update leaves it alone
        Blob* p = net.learnable_params()[j];
        ctx->on_gpu() ? p->mutable_gpu_data() : p->mutable_cpu_data();
      }
    auto t = now();
    for (int i = 0; i < n; ++i) {
      const auto l = now();
      net.forward_layer(*ctx, i);
      fwd[static_cast<size_t>(i)] += ms_since(l);
    }
    total_fwd += ms_since(t);
    if (phase == Phase::TRAIN) {
      t = now();
      for (int i = n; i-- > 0;) {
        const auto l = now();
        net.backward_layer(*ctx, i);
        bwd[static_cast<size_t>(i)] += ms_since(l);
      }
      total_bwd += ms_since(t);
    }
    spdlog::info("Iteration: {} {} time: {:.3f} ms.", it + 1, phase == Phase::TRAIN ? "forward-backward" : "forward",
                 ms_since(iter_start));
  }
  spdlog::info("Average time per layer:");
  const double iters = opt.iterations;
  for (int i = 0; i < n; ++i) {
    spdlog::info("{:>16}\tforward: {:.4f} ms.", net.layer_name(i), fwd[static_cast<size_t>(i)] / iters);
    if (phase == Phase::TRAIN)
      spdlog::info("{:>16}\tbackward: {:.4f} ms.", net.layer_name(i), bwd[static_cast<size_t>(i)] / iters);
  }
  spdlog::info("Average Forward pass: {:.4f} ms.", total_fwd / iters);
  // TEST runs no backward: its whole iteration is the forward pass (with the loop's own time).
  if (phase == Phase::TRAIN) {
    spdlog::info("Average Backward pass: {:.4f} ms.", total_bwd / iters);
    spdlog::info("Average Forward-Backward: {:.4f} ms.", ms_since(start) / iters);
  }
  spdlog::info("Total Time: {:.3f} ms.", ms_since(start));
  spdlog::info("Peak resident memory: {:.1f} MiB", peak_rss_mib());
  return 0;
}

std::string version_text() {
  std::string s = std::string("crema ") + CREMA_VERSION + " (" + CREMA_BUILD_TYPE + " build)\n";
  if (cuda::compiled_in())
    s += "CUDA " + cuda::runtime_version() + ", cuDNN " + cuda::cudnn_version() + " (compiled in)\n";
  else
    s += "CUDA: not compiled in\n";
#ifdef CREMA_CUDA_EMULATION
  s += "CUDA emulation build (tests/cuda_emu): the CUDA backend runs on the host, for tests only\n";
#endif
  return s;
}

}  // namespace crema::app
