#include "io/checkpoint.hpp"

#include <fcntl.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/caffe_binary.hpp"
#include "io/hdf5.hpp"

namespace crema::io {

namespace fs = std::filesystem;

std::string escape_h5_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '%')
      out += "%25";
    else if (c == '/')
      out += "%2F";
    else
      out += c;
  }
  if (out == ".") out = "%2E";
  return out;
}

std::string unescape_h5_name(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && i + 2 < name.size()) {
      const std::string code = name.substr(i + 1, 2);
      if (code == "25" || code == "2F" || code == "2E") {
        out += code == "25" ? '%' : code == "2F" ? '/' : '.';
        i += 2;
        continue;
      }
    }
    out += name[i];
  }
  return out;
}

std::string snapshot_base(const std::string& prefix, int iter) { return prefix + "_iter_" + std::to_string(iter); }

std::optional<SnapshotName> parse_snapshot_name(const std::string& path) {
  const size_t at = path.rfind("_iter_");
  if (at == std::string::npos) return std::nullopt;
  const char* digits = path.data() + at + 6;
  const char* end = path.data() + path.size();
  long long iter = -1;
  const auto [rest, ec] = std::from_chars(digits, end, iter);
  if (ec != std::errc() || iter < 0 || iter > INT_MAX || (*digits == '0' && rest - digits > 1)) return std::nullopt;
  SnapshotName name{path.substr(0, at), static_cast<int>(iter), std::string(rest, end)};
  for (const char* kind : {".caffemodel.h5", ".solverstate.h5", ".caffemodel", ".solverstate"})
    if (name.kind == kind) return name;
  return std::nullopt;
}

std::vector<SnapshotOnDisk> snapshots_on_disk(const std::string& prefix, bool caffe_binary) {
  const fs::path dir = fs::path(prefix).parent_path();
  const std::string base = fs::path(prefix).filename().string();
  std::map<int, SnapshotOnDisk> found;
  for (const std::string& file : regular_file_names(dir.string())) {
    const auto name = parse_snapshot_name(file);
    if (!name || name->prefix != base) continue;
    const bool h5 = name->kind.ends_with(".h5");
    if (!h5 && !caffe_binary) continue;
    SnapshotOnDisk& s = found[name->iter];
    s.iter = name->iter;
    std::string& slot = name->kind.starts_with(".solverstate") ? s.state : s.weights;
    if (h5 || slot.empty()) slot = (dir / file).string();  // the .h5 file where both are there
  }
  std::vector<SnapshotOnDisk> out;
  for (auto& [iter, s] : found) out.push_back(std::move(s));
  return out;
}

namespace {

// One writer for both sources of weights: every layer gets a group (parameter-free
// ones too, as Caffe writes them), each listed blob a dataset under its index.
struct BlobEntry {
  std::string layer;
  size_t index;
  const Blob* blob;
};

// file: written in place (callers give a temporary name).
void write_weights_h5(const std::string& file, const std::vector<std::string>& layers,
                      const std::vector<BlobEntry>& blobs, bool with_diff) {
  H5File f(file, H5File::Mode::Create);
  f.create_group("data");
  if (with_diff) f.create_group("diff");
  for (const auto& layer : layers) {
    f.create_group("data/" + escape_h5_name(layer));
    if (with_diff) f.create_group("diff/" + escape_h5_name(layer));
  }
  for (const auto& e : blobs) {
    const std::string name = escape_h5_name(e.layer) + "/" + std::to_string(e.index);
    f.write_floats("data/" + name, e.blob->shape(), e.blob->cpu_data());
    if (with_diff) f.write_floats("diff/" + name, e.blob->shape(), e.blob->cpu_diff());
  }
  f.flush();
}

// The layers and blobs a net's weights file holds.
void net_entries(const Net& net, const std::vector<const Net*>& test_nets, std::vector<std::string>& layers,
                 std::vector<BlobEntry>& blobs) {
  std::set<std::string> seen;
  const auto add = [&](const Net& from, bool parameters_only) {
    for (int i = 0; i < from.num_layers(); ++i) {
      const Layer& layer = from.layer(i);
      if (parameters_only && layer.blobs().empty()) continue;
      // Split layers are inserted by crema, not written by the user.
      if (std::string(layer.type()) == "Split" || !seen.insert(layer.name()).second) continue;
      layers.push_back(layer.name());
      for (size_t j = 0; j < layer.blobs().size(); ++j)
        if (!from.param_is_shared(i, static_cast<int>(j)))  // weight-tied copies are not written
          blobs.push_back({layer.name(), j, layer.blobs()[j].get()});
    }
  };
  add(net, false);
  for (const Net* test : test_nets) add(*test, true);  // layers the main net lacks
}

// file: written in place (callers give a temporary name).
void write_state_h5(const std::string& file, const SolverState& s, const std::string& learned_net,
                    const std::string& config_yaml, const std::string& compute = "") {
  H5File f(file, H5File::Mode::Create);
  f.write_int("iter", s.iter);
  f.write_int("current_step", s.current_step);
  f.write_string("learned_net", learned_net);
  f.create_group("history");
  for (size_t i = 0; i < s.history.size(); ++i)
    f.write_floats("history/" + std::to_string(i), s.history[i].shape(), s.history[i].cpu_data());
  f.create_group("crema");
  f.write_string("crema/type", s.type);
  f.write_bytes("crema/rng", s.rng_state);
  f.write_floats("crema/recent_losses", {static_cast<int>(s.recent_losses.size())}, s.recent_losses.data());
  f.write_floats("crema/smoothed_loss", {1}, &s.smoothed_loss);
  f.write_int("crema/loss_origin", s.loss_origin);
  f.write_bytes("crema/config", config_yaml);
  if (!compute.empty()) f.write_bytes("crema/compute", compute);
  f.create_group("crema/layer_state");
  for (const auto& [key, value] : s.layer_states) f.write_bytes("crema/layer_state/" + escape_h5_name(key), value);
  f.flush();
}

}  // namespace

void save_weights(const Net& net, const std::string& path, bool with_diff, const std::vector<const Net*>& test_nets) {
  std::vector<std::string> layers;
  std::vector<BlobEntry> blobs;
  net_entries(net, test_nets, layers, blobs);
  write_atomically(path, [&](const std::string& tmp) { write_weights_h5(tmp, layers, blobs, with_diff); });
}

void save_weights(const Weights& weights, const std::string& path) {
  std::vector<std::string> layers;
  std::vector<BlobEntry> blobs;
  for (const auto& lw : weights) {
    layers.push_back(lw.layer);
    for (const auto& [index, blob] : lw.blobs) blobs.push_back({lw.layer, static_cast<size_t>(index), &blob});
  }
  write_atomically(path, [&](const std::string& tmp) { write_weights_h5(tmp, layers, blobs, false); });
}

namespace {
Weights read_weights(const std::string& path);

// Weights of a run that diverged load without complaint and poison everything after
// them (a ReLU even hides them, turning NaN into 0): refused, naming the first blob.
void refuse_non_finite(const Weights& weights, const std::string& path) {
  for (const LayerWeights& lw : weights)
    for (const auto& [index, blob] : lw.blobs) {
      const long long bad = cpu_count_non_finite(blob.count(), blob.cpu_data());
      if (bad > 0)
        throw Error(path + ": layer '" + lw.layer + "' parameter " + std::to_string(index) + " holds " +
                    std::to_string(bad) + " NaN or infinite value(s) of " + std::to_string(blob.count()) +
                    ": the weights of a run that diverged; use an earlier snapshot");
    }
}
}  // namespace

Weights load_weights(const std::string& path) {
  Weights out = read_weights(path);
  refuse_non_finite(out, path);
  return out;
}

namespace {
Weights read_weights(const std::string& path) {
  // By content: Caffe users name binary and HDF5 weights alike (.caffemodel).
  if (!has_hdf5_signature(path)) return read_caffemodel(path);
  H5File f(path, H5File::Mode::Read);
  if (!f.exists("data")) {
    if (f.exists("iter") && f.exists("history"))  // the other file of a snapshot
      throw Error(path +
                  ": this is a solver state (the .solverstate.h5 of a snapshot), not weights: give the "
                  "snapshot's .caffemodel.h5, beside it, as weights (crema train resumes from a solver state "
                  "with --snapshot)");
    throw Error(path + ": not a Caffe HDF5 weights file (no /data group); expected a .caffemodel.h5");
  }
  if (f.is_dataset("data"))  // an HDF5Data file given for weights: both name their first dataset "data"
    throw Error(path +
                ": not weights: its 'data' is a dataset, as in the files HDF5Data reads (weights hold groups "
                "/data/<layer> with datasets 0, 1, …); expected a .caffemodel.h5");
  Weights out;
  for (const auto& g : f.children("data")) {
    LayerWeights lw;
    lw.layer = unescape_h5_name(g);
    std::vector<std::string> names = f.children("data/" + g);
    std::vector<int> indices;
    for (const auto& n : names) {
      char* end = nullptr;
      const long v = std::strtol(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0') {
        const std::string at = "data/" + g + "/" + n;
        // h5py writes f['data/enc/fc/0'] as nested groups: the layer name's '/' must be escaped.
        if (!f.is_dataset(at))
          f.fail("unexpected group '" + at + "' (expected datasets 0, 1, ...): a layer named '" + lw.layer + "/" + n +
                 "' is stored with its '/' as %2F, as " + "data/" + g + "%2F" + n + "/0 (in h5py: f['data/" + g +
                 "%2F" + n + "/0'] = …)");
        f.fail("unexpected dataset '" + at + "' (expected 0, 1, ...)");
      }
      indices.push_back(static_cast<int>(v));
    }
    std::sort(indices.begin(), indices.end());
    for (int idx : indices) {
      std::vector<int> shape;
      std::vector<float> v = f.read_floats("data/" + g + "/" + std::to_string(idx), &shape);
      Blob b(shape);
      std::copy(v.begin(), v.end(), b.mutable_cpu_data());
      lw.blobs.emplace_back(idx, std::move(b));
    }
    out.push_back(std::move(lw));
  }
  return out;
}

// Whether a parameter stored with shape `file` fits the net's `net`. Besides equal
// shapes, Caffe's rule for the legacy num/channels/height/width of binary files: they
// are always 4-D and fit a blob of fewer axes right-aligned, with 1s in front (an
// InnerProduct weight stored 1x1xNxK fits NxK; a bias 1x1x1xN fits N).
bool shape_fits(const std::vector<int>& file, const std::vector<int>& net) {
  if (file == net) return true;
  if (file.size() != 4 || net.size() >= 4) return false;
  const auto lead = static_cast<std::ptrdiff_t>(4 - net.size());
  return std::all_of(file.begin(), file.begin() + lead, [](int d) { return d == 1; }) &&
         std::equal(net.begin(), net.end(), file.begin() + lead);
}

}  // namespace

std::vector<std::string> loaded_through_sharing(const Net& net, int layer, const std::vector<std::string>& loaded) {
  std::vector<std::string> from;
  const int n = static_cast<int>(net.layer(layer).blobs().size());
  for (int j = 0; j < n; ++j) {
    const int id = net.param_id(layer, j);
    bool supplied = false;
    for (int k = 0; k < net.num_layers() && !supplied; ++k) {
      if (k == layer) continue;
      for (int jj = 0; jj < static_cast<int>(net.layer(k).blobs().size()) && !supplied; ++jj)
        if (net.param_id(k, jj) == id && std::find(loaded.begin(), loaded.end(), net.layer_name(k)) != loaded.end()) {
          supplied = true;
          if (std::find(from.begin(), from.end(), net.layer_name(k)) == from.end()) from.push_back(net.layer_name(k));
        }
    }
    if (!supplied) return {};
  }
  return from;
}

std::vector<std::string> layers_not_loaded(const Net& net, const std::vector<std::string>& loaded) {
  std::vector<std::string> out;
  for (int i = 0; i < net.num_layers(); ++i)
    if (!net.layer(i).blobs().empty() && std::find(loaded.begin(), loaded.end(), net.layer_name(i)) == loaded.end() &&
        loaded_through_sharing(net, i, loaded).empty())
      out.push_back(net.layer_name(i));
  return out;
}

void refuse_unloaded(const std::vector<std::string>& missing, const std::vector<std::string>& files,
                     const std::vector<std::string>& hints) {
  if (missing.empty() || files.empty()) return;
  std::vector<std::string> quoted;
  for (const std::string& name : missing) quoted.push_back("'" + name + "'");
  std::string said;
  for (const std::string& hint : hints) said += "; " + hint;
  throw ConfigError(Mark{}, "--weights",
                    first_few(files, files.size()) + " hold(s) no weights for layer " + first_few(quoted, 5) +
                        ": the scores would come from random parameters. Give the weights this net was trained to "
                        "(layers are matched by name)" +
                        said);
}

std::vector<UnusedLayer> unused_layers(const Weights& weights, const std::vector<std::string>& ignored,
                                       const std::string& file) {
  std::vector<UnusedLayer> out;
  for (const LayerWeights& lw : weights)
    if (!lw.blobs.empty() && std::find(ignored.begin(), ignored.end(), lw.layer) != ignored.end()) {
      UnusedLayer u{file, lw.layer, {}};
      for (const auto& [index, blob] : lw.blobs) u.shapes.push_back(blob.shape());
      out.push_back(std::move(u));
    }
  return out;
}

const UnusedLayer* same_shapes(const Layer& layer, const std::vector<UnusedLayer>& unused) {
  if (layer.blobs().empty()) return nullptr;
  std::vector<std::vector<int>> shapes;
  for (const auto& b : layer.blobs()) shapes.push_back(b->shape());
  const auto it = std::find_if(unused.begin(), unused.end(), [&](const UnusedLayer& u) { return u.shapes == shapes; });
  return it == unused.end() ? nullptr : &*it;
}

std::string rename_hint(const Net& net, const std::string& name, const std::vector<UnusedLayer>& unused) {
  const Layer* layer = net.layer_by_name(name);
  const UnusedLayer* same = layer ? same_shapes(*layer, unused) : nullptr;
  if (!same) return "";
  return "layer '" + same->layer + "' of " + same->file + ", with parameters of the same shapes, is not used: if '" +
         name + "' is that layer renamed, give it the name '" + same->layer + "'";
}

std::string WeightsMismatch::layer_list() const { return fmt::format("{}", fmt::join(layers_, ",")); }

void refuse_other_net(const WeightsMismatch& e) {
  throw ConfigError(Mark{}, "--weights",
                    std::string(e.what()) + ": the weights were trained for another net; give this net's weights");
}

void load_inference_weights(Net& net, const std::vector<std::string>& files) {
  std::vector<std::string> loaded;
  std::vector<UnusedLayer> unused;
  try {
    for (const auto& f : files) {
      const Weights weights = load_weights(f);
      const CopyReport report = copy_weights(net, weights, f);
      loaded.insert(loaded.end(), report.loaded.begin(), report.loaded.end());
      for (UnusedLayer& u : unused_layers(weights, report.ignored_source, f)) unused.push_back(std::move(u));
    }
  } catch (const WeightsMismatch& e) {
    refuse_other_net(e);
  }
  const std::vector<std::string> missing = layers_not_loaded(net, loaded);
  std::vector<std::string> hints;
  for (const std::string& name : missing)
    if (std::string hint = rename_hint(net, name, unused); !hint.empty()) hints.push_back(std::move(hint));
  refuse_unloaded(missing, files, hints);
}

namespace {
// A convolution fed straight by a data layer whose kernel takes other input channels (its
// axis 1) than the data gives: nearly always colour images read for a grey model, or grey
// ones for a colour model, which a renamed layer or --reinit would only hide.
std::string input_channels_hint(const Net& net, int li, const std::vector<int>& file, const std::vector<int>& in_net) {
  if (std::string(net.layer(li).type()) != "Convolution" || file.size() != 4 || in_net.size() != 4 ||
      file[1] == in_net[1] || file[0] != in_net[0] || file[2] != in_net[2] || file[3] != in_net[3] ||
      net.bottom_vec(li).empty())
    return "";
  const Blob* input = net.bottom_vec(li)[0];
  for (int k = 0; k < li; ++k) {
    const auto& tops = net.top_vec(k);
    if (!net.layer(k).is_data() || std::find(tops.begin(), tops.end(), input) == tops.end()) continue;
    const std::string type = net.layer(k).type();
    const std::string data = "data layer '" + net.layer_name(k) + "' (" + type + ")";
    const bool grey_model = file[1] == 1 && in_net[1] == 3, colour_model = file[1] == 3 && in_net[1] == 1;
    std::string what = "the weights take " + std::to_string(file[1]) + " input channel(s) and " + data + " gives " +
                       std::to_string(in_net[1]);
    if (grey_model) what = "the weights take grey images (1 channel) and " + data + " gives colour ones (3)";
    if (colour_model) what = "the weights take colour images (3 channels) and " + data + " gives grey ones (1)";
    if (type == "ImageData" && (grey_model || colour_model))
      return "; " + what + ": set image_data_param.is_color: " + (grey_model ? "false" : "true");
    if (type == "Data" && (grey_model || colour_model))
      return "; " + what + ": set transform_param." + (grey_model ? "force_gray" : "force_color") +
             ": true (for encoded records; raw ones keep their channels, so convert the images again)";
    if (type == "Input") return "; " + what + ": give input_param.shape " + std::to_string(file[1]) + " channels";
    return "; " + what;
  }
  return "";
}

// Why the file's weights `lw` do not fit the net's layer `li`, or "" when they do.
std::string misfit(const Net& net, int li, const LayerWeights& lw, const std::string& source_name) {
  const Layer& target = net.layer(li);
  const auto& blobs = target.blobs();
  const std::string count_differs = source_name + ": layer '" + lw.layer + "' has " + std::to_string(lw.blobs.size()) +
                                    " parameter blob(s) but the net's " + target.type() + " layer has " +
                                    std::to_string(blobs.size());
  for (size_t j = 0; j < blobs.size(); ++j) {
    auto it =
        std::find_if(lw.blobs.begin(), lw.blobs.end(), [&](const auto& p) { return p.first == static_cast<int>(j); });
    if (it == lw.blobs.end()) {
      if (net.param_is_shared(li, static_cast<int>(j))) continue;  // tied weights are stored once
      if (lw.blobs.size() != blobs.size()) return count_differs;
      // As many blobs, numbered otherwise (0 and 2, or from 1).
      std::string numbered;
      for (const auto& [index, blob] : lw.blobs) numbered += (numbered.empty() ? "" : ", ") + std::to_string(index);
      return source_name + ": layer '" + lw.layer + "' has its " + std::to_string(lw.blobs.size()) +
             " parameter blob(s) numbered " + numbered + ", but the net's " + target.type() +
             " layer reads them as 0 to " + std::to_string(blobs.size() - 1) +
             " (datasets data/<layer>/0, /1, … in the layer's order: weights, then "
             "bias)";
    }
    if (!shape_fits(it->second.shape(), blobs[j]->shape()))
      return source_name + ": layer '" + lw.layer + "' parameter " + std::to_string(j) + " has shape " +
             it->second.shape_string() + " in the file but " + blobs[j]->shape_string() + " in the net" +
             (j == 0 ? input_channels_hint(net, li, it->second.shape(), blobs[j]->shape()) : "");
  }
  return lw.blobs.size() > blobs.size() ? count_differs : "";
}

int layer_index(const Net& net, const std::string& name) {
  for (int i = 0; i < net.num_layers(); ++i)
    if (net.layer_name(i) == name) return i;
  return -1;
}
}  // namespace

CopyReport copy_weights(Net& net, const Weights& weights, const std::string& source_name) {
  // Every layer is checked before any is copied: a refusal leaves the net as it was and
  // names every layer that does not fit, so one --reinit covers them all.
  std::string first;
  std::vector<std::string> misfits;
  for (const auto& lw : weights) {
    const int li = layer_index(net, lw.layer);
    if (li < 0) continue;
    const std::string why = misfit(net, li, lw, source_name);
    if (why.empty()) continue;
    if (first.empty()) first = why;
    misfits.push_back(lw.layer);
  }
  if (!misfits.empty()) {
    std::string others;
    for (size_t i = 1; i < misfits.size(); ++i) others += (i > 1 ? ", '" : "'") + misfits[i] + "'";
    throw WeightsMismatch(
        first + (misfits.size() > 1 ? " (layer" + std::string(misfits.size() > 2 ? "s " : " ") + others + " do" +
                                          (misfits.size() > 2 ? "" : "es") + " not fit either)"
                                    : ""),
        misfits);
  }
  CopyReport report;
  for (const auto& lw : weights) {
    const int li = layer_index(net, lw.layer);
    if (li < 0) {
      report.ignored_source.push_back(lw.layer);
      continue;
    }
    auto& blobs = net.layer(li).blobs();
    for (size_t j = 0; j < blobs.size(); ++j) {
      auto it = std::find_if(lw.blobs.begin(), lw.blobs.end(), [&](const auto& p) { return p.first == static_cast<int>(j); });
      if (it != lw.blobs.end()) blobs[j]->copy_from(it->second);
    }
    report.loaded.push_back(lw.layer);
  }
  return report;
}

void save_solver_state(const SolverState& s, const std::string& learned_net, const std::string& config_yaml,
                       const std::string& path) {
  write_atomically(path, [&](const std::string& tmp) { write_state_h5(tmp, s, learned_net, config_yaml); });
}

void save_snapshot(const Net& net, bool with_diff, const std::vector<const Net*>& test_nets, const SolverState& state,
                   const std::string& config_yaml, const std::string& compute, const std::string& weights_path,
                   const std::string& state_path) {
  std::vector<std::string> layers;
  std::vector<BlobEntry> blobs;
  net_entries(net, test_nets, layers, blobs);
  const std::string weights_tmp = temp_name_for(weights_path), state_tmp = temp_name_for(state_path);
  try {
    write_weights_h5(weights_tmp, layers, blobs, with_diff);
    write_state_h5(state_tmp, state, weights_path, config_yaml, compute);
  } catch (...) {
    std::remove(weights_tmp.c_str());  // half-written files must not stay behind
    std::remove(state_tmp.c_str());
    throw;
  }
  // Both synced first, so that the two renames follow each other closely (commit_file's own
  // sync then finds nothing to write; a large state on a network file system takes seconds).
  for (const std::string& tmp : {weights_tmp, state_tmp})
    if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  std::error_code ec;
  const bool weights_there = fs::exists(weights_path, ec);  // a resumed run writing an iteration again
  try {
    commit_file(weights_tmp, weights_path);
  } catch (...) {
    std::remove(state_tmp.c_str());
    throw;
  }
  try {
    commit_file(state_tmp, state_path);
  } catch (...) {
    if (!weights_there) std::remove(weights_path.c_str());  // no weights without their state
    throw;
  }
}

namespace {

// Caffe's HDF5 layout plus crema's /crema extras; returns learned_net as written.
std::string load_h5_solver_state(const std::string& path, LoadedState& out) {
  H5File f(path, H5File::Mode::Read);
  if (!f.exists("iter") || !f.exists("history")) {
    // Weights given where the state goes: the way on is the state beside them, or --weights.
    std::string advice;
    if (f.exists("data")) {
      const auto named = parse_snapshot_name(path);
      const bool weights_name = named && named->kind.find("caffemodel") != std::string::npos;
      const std::string state = weights_name ? snapshot_base(named->prefix, named->iter) + ".solverstate.h5" : "";
      advice = "; these are weights: resume with " +
               (weights_name && fs::exists(state) ? "the solver state beside them, --snapshot " + state
                                                  : "a snapshot's .solverstate.h5") +
               ", or start a new run from them with --weights";
    }
    throw Error(path + ": not a solver state file (expected Caffe's iter/history layout, a .solverstate.h5)" + advice);
  }
  SolverState& s = out.state;
  // Counters beyond int would wrap to another iteration, not fail.
  const auto counter = [&](const std::string& name) {
    const long long v = f.read_int(name);
    if (v < 0 || v > INT_MAX)
      throw Error(path + ": '" + name + "' is " + std::to_string(v) + ", not an iteration count; the file is damaged");
    return static_cast<int>(v);
  };
  s.iter = counter("iter");
  s.current_step = f.exists("current_step") ? counter("current_step") : 0;
  std::vector<std::string> names = f.children("history");
  std::vector<int> indices;
  for (const auto& n : names) indices.push_back(std::atoi(n.c_str()));
  std::sort(indices.begin(), indices.end());
  for (int idx : indices) {
    std::vector<int> shape;
    std::vector<float> v = f.read_floats("history/" + std::to_string(idx), &shape);
    s.history.emplace_back(shape);
    std::copy(v.begin(), v.end(), s.history.back().mutable_cpu_data());
  }
  if (f.exists("crema")) {
    s.type = f.read_string("crema/type");
    s.rng_state = f.read_bytes("crema/rng");
    std::vector<int> shape;
    s.recent_losses = f.read_floats("crema/recent_losses", &shape);
    const std::vector<float> smoothed = f.read_floats("crema/smoothed_loss", &shape);
    if (smoothed.size() != 1) throw Error(path + ": 'crema/smoothed_loss' should hold one value; the file is damaged");
    s.smoothed_loss = smoothed[0];
    s.loss_origin = counter("crema/loss_origin");
    out.config_yaml = f.read_bytes("crema/config");
    if (f.exists("crema/compute")) out.compute = f.read_bytes("crema/compute");
    for (const auto& key : f.children("crema/layer_state"))
      s.layer_states[unescape_h5_name(key)] = f.read_bytes("crema/layer_state/" + key);
  }
  return f.exists("learned_net") ? f.read_string("learned_net") : std::string();
}

}  // namespace

LoadedState load_solver_state(const std::string& path) {
  LoadedState out;
  std::string learned;
  // By content, as for weights: Caffe writes .solverstate (binary) or .solverstate.h5.
  if (has_hdf5_signature(path)) {
    learned = load_h5_solver_state(path, out);
  } else {
    CaffeSolverState binary = read_binary_solver_state(path);
    out.state = std::move(binary.state);
    learned = std::move(binary.learned_net);
  }
  // The weights file: next to the state file first (a moved run directory), then as written.
  const fs::path beside = fs::path(path).parent_path() / fs::path(learned).filename();
  if (!learned.empty() && fs::exists(beside))
    out.weights_path = beside.string();
  else if (!learned.empty() && fs::exists(learned)) {
    out.weights_path = learned;
    // Caffe's lookup (from the working directory), but a file of that name may be another
    // run's: said.
    spdlog::warn("{}: its weights file is not beside it ({}); using '{}', the path the state names", path,
                 beside.string(), learned);
  } else
    throw Error(path + ": its weights file '" + learned + "' was found neither next to it (" + beside.string() +
                ") nor at that path; keep the weights file (.caffemodel or .caffemodel.h5) beside the solver state");
  return out;
}

}  // namespace crema::io
