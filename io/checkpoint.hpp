// Checkpoints in Caffe's HDF5 layout, so Caffe reads crema's files and crema reads
// Caffe's:
//   <prefix>_iter_<N>.caffemodel.h5   /data/<layer>/<i>  (float32, full N-D shape)
//   <prefix>_iter_<N>.solverstate.h5  iter, current_step, learned_net, history/<i>
// plus, beyond Caffe, a /crema group in the solver state with what an exact resume
// needs (solver type, RNG state, smoothed-loss window, data reader positions and the
// resolved config). Files are written to a temporary name, flushed, synced and
// renamed, so a crash never leaves a half-written checkpoint under the real name.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/net.hpp"
#include "engine/solver.hpp"
#include "io/files.hpp"

namespace crema::io {

// Layer names may contain '/', which HDF5 reads as a path separator: escaped as %2F.
std::string escape_h5_name(const std::string& name);
std::string unescape_h5_name(const std::string& name);

struct LayerWeights {
  std::string layer;
  std::vector<std::pair<int, Blob>> blobs;  // (index in the layer, values)
};
using Weights = std::vector<LayerWeights>;

// Layers with parameters that only `test_nets` have are written after the net's own.
void save_weights(const Net& net, const std::string& path, bool with_diff = false,
                  const std::vector<const Net*>& test_nets = {});
// Writes weights read from elsewhere (e.g. a binary .caffemodel) in the same layout.
void save_weights(const Weights& weights, const std::string& path);
// Reads Caffe's HDF5 layout or a binary .caffemodel (io/caffe_binary.hpp), told apart
// by content, not by the file name.
Weights load_weights(const std::string& path);

// What copy_weights did, for the fine-tuning report.
struct CopyReport {
  std::vector<std::string> loaded;         // target layers that received weights
  std::vector<std::string> ignored_source; // source layers with no target of that name
};
// A file's parameters do not fit the net's layers of the same names. The message names
// the file, the first such layer and both shapes, then the others; what to do about it
// depends on the command, so callers add it.
class WeightsMismatch : public Error {
 public:
  WeightsMismatch(const std::string& message, std::vector<std::string> layers)
      : Error(message), layers_(std::move(layers)) {}
  const std::vector<std::string>& layers() const { return layers_; }
  std::string layer_list() const;  // "a,b", as --reinit takes them

 private:
  std::vector<std::string> layers_;
};

// For scoring (test, classify, export): such a file holds another net's weights
// (ConfigError on --weights).
[[noreturn]] void refuse_other_net(const WeightsMismatch& e);

// Copies by layer name; throws WeightsMismatch on a mismatch.
// A 4-D blob also fits a net blob of fewer axes right-aligned with leading 1s, as
// Caffe reads the legacy num/channels/height/width of old binary files.
CopyReport copy_weights(Net& net, const Weights& weights, const std::string& source_name);
// The net's layers with parameters that are neither in `loaded` by name nor get every
// parameter through sharing (param names) from layers in it, in net order.
std::vector<std::string> layers_not_loaded(const Net& net, const std::vector<std::string>& loaded);
// The layers in `loaded` whose shared parameters are all of layer i's (a tied LSTM's second
// copy), in net order; empty when some parameter of it comes from none of them.
std::vector<std::string> loaded_through_sharing(const Net& net, int layer, const std::vector<std::string>& loaded);
// A file's layer with parameters that no layer of the net took (no layer of its name).
struct UnusedLayer {
  std::string file, layer;
  std::vector<std::vector<int>> shapes;  // of its parameter blobs, in order
};
// Of `weights` (read from `file`), the layers with parameters among `ignored` (the names no
// net took).
std::vector<UnusedLayer> unused_layers(const Weights& weights, const std::vector<std::string>& ignored,
                                       const std::string& file);
// The unused layer whose parameter shapes are those of `layer`, or nullptr: beside a layer
// that no file gave weights, most often that layer renamed by mistake (conv2 -> Conv2).
const UnusedLayer* same_shapes(const Layer& layer, const std::vector<UnusedLayer>& unused);
// "layer 'conv2' of F, with parameters of the same shapes, is not used: if 'Conv2' is that
// layer renamed, give it the name 'conv2'", or "" when no unused layer has `name`'s shapes.
std::string rename_hint(const Net& net, const std::string& name, const std::vector<UnusedLayer>& unused);
// For scoring (test, classify, export): a layer with parameters that none of `files`
// provided would score with random parameters. Throws ConfigError (on --weights) naming
// the `missing` layers, if any, and ending with the `hints` (a likely rename).
void refuse_unloaded(const std::vector<std::string>& missing, const std::vector<std::string>& files,
                     const std::vector<std::string>& hints = {});
// For inference (classify, export): copies each file's weights in turn (later files win),
// then refuse_unloaded, with a rename_hint for each layer left out.
void load_inference_weights(Net& net, const std::vector<std::string>& files);

// learned_net is stored as written (Caffe does the same); it is looked up relative
// to the state file first when loading, so a moved run directory still resumes.
// load_solver_state also reads Caffe's binary .solverstate (told apart by content).
void save_solver_state(const SolverState& state, const std::string& learned_net, const std::string& config_yaml,
                       const std::string& path);
// A snapshot's two files (save_weights' and save_solver_state's) as a pair: both are written
// and synced under temporary names and renamed only then, one right after the other, the
// state last. A kill, a full disk or an error while they are written leaves neither under its
// real name (only a kill between the two renames can still leave the weights alone); a
// weights file without its state would make `--resume` refuse the prefix (a run's weights,
// nothing to continue from) until someone removed it.
// `compute`: what ordered the run's sums ("the CPU with 2 threads"), which a resume elsewhere
// cannot repeat bit for bit.
void save_snapshot(const Net& net, bool with_diff, const std::vector<const Net*>& test_nets, const SolverState& state,
                   const std::string& config_yaml, const std::string& compute, const std::string& weights_path,
                   const std::string& state_path);
struct LoadedState {
  SolverState state;
  std::string weights_path;  // resolved path of the learned_net file
  std::string config_yaml;   // empty for Caffe-written files
  std::string compute;       // save_snapshot's; empty for Caffe's files and older crema ones
};
LoadedState load_solver_state(const std::string& path);

std::string snapshot_base(const std::string& prefix, int iter);  // "<prefix>_iter_<N>"

// "<prefix>_iter_<N><kind>" taken apart, for the kinds crema and Caffe write
// (".caffemodel.h5", ".solverstate.h5", ".caffemodel", ".solverstate"); nothing for any
// other name (N in 0..INT_MAX, written without leading zeros).
struct SnapshotName {
  std::string prefix;
  int iter = 0;
  std::string kind;
};
std::optional<SnapshotName> parse_snapshot_name(const std::string& path);

// The snapshots crema wrote under `prefix` (its <prefix>_iter_<N>.solverstate.h5 and
// .caffemodel.h5 files), by iteration; a file of a pair may be missing (removed by hand).
// With `caffe_binary`, Caffe's binary .solverstate and .caffemodel files count too (where
// an iteration has no .h5 file of that kind): a resume may continue a Caffe run.
struct SnapshotOnDisk {
  int iter = 0;
  std::string state, weights;  // "" where that file is not there
};
std::vector<SnapshotOnDisk> snapshots_on_disk(const std::string& prefix, bool caffe_binary = false);

}  // namespace crema::io
