// Net: the layers of one phase wired into a DAG by blob name (Caffe's Net).
// Construction filters layers by include/exclude rules, inserts Split layers where
// a blob feeds several consumers (so their gradients are summed), resolves in-place
// layers and shared parameters, decides which layers need backward, and logs each
// layer's top shapes plus the parameter count and memory.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/config.hpp"
#include "engine/context.hpp"
#include "engine/layer.hpp"
#include "engine/layer_spec.hpp"

namespace crema {

struct NetSpec {
  std::string name;
  std::vector<LayerSpec> layers;
  bool force_backward = false;
  NetStateSetting state;  // the net's own `state` key, the base the solver's states merge over
  bool debug_info = false;  // log each layer's data and gradient magnitudes (Caffe's debug_info)
  Mark mark;
  std::string path;

  // Parses a net map: name, layer: [...], force_backward, state.
  static NetSpec parse(const Node& node);
  // Creates each layer from its spec, as building the net does, so that a mistake in
  // a layer's parameters (an unknown key or type, a bad value) is found without a net:
  // nothing is set up, no data opened, and no shape checked. For `crema convert`; and for the
  // commands that build one net (`built`, its state), which check the layers it leaves out
  // too, except those of a type crema does not have (a layer they never build may be).
  // With `caffe_only`, a layer of a Caffe type crema lacks (LayerRegistry::caffe_only) is
  // listed there rather than refused: `crema convert` writes it for the user to replace.
  void check_layer_params(const NetState* built = nullptr, std::vector<const LayerSpec*>* caffe_only = nullptr) const;
  // Of `stages` (a command line's --stage), those that no layer's include/exclude rule names:
  // they change nothing, a misspelling most likely (Caffe takes them without a word). Said as
  // a sentence for a warning; "" when every one is named.
  std::string stages_no_rule_names(const std::vector<std::string>& stages) const;
  // The state a net of this spec is built in for `phase`: the phase, then `state` merged.
  NetState state_for(Phase phase) const { return merged(NetState{phase, 0, {}}, state); }
};

class Net {
 public:
  // `quiet` suppresses the per-layer setup log (used by tests and `crema time`).
  Net(const NetSpec& spec, const NetState& state, Context& ctx, bool quiet = false);
  // The layers go last to first: an output layer publishes its file before a data layer's
  // clean-up, which waits for its reader (a read stalled on a network file system can hold it).
  ~Net();

  // Layer::finish of every layer, first to last: the command is done with the net.
  void finish();
  // Layer::abandon of every layer: the command keeps nothing the net's layers wrote.
  void abandon();

  // Runs every layer; returns the total weighted loss.
  float forward(Context& ctx);
  // Backward through the layers that need it; parameter diffs accumulate.
  void backward(Context& ctx);
  float forward_backward(Context& ctx) {
    const float loss = forward(ctx);
    backward(ctx);
    return loss;
  }
  // Single-layer steps, for per-layer timing.
  float forward_layer(Context& ctx, int i);
  void backward_layer(Context& ctx, int i);
  void clear_param_diffs();

  // Makes this net use the parameters of `other`'s layers with the same names
  // (the TEST net shares the TRAIN net's weights).
  void share_weights_from(const Net& other);

  const std::string& name() const { return name_; }
  Phase phase() const { return state_.phase; }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  Layer& layer(int i) { return *layers_[static_cast<size_t>(i)]; }
  const Layer& layer(int i) const { return *layers_[static_cast<size_t>(i)]; }
  const std::string& layer_name(int i) const { return layers_[static_cast<size_t>(i)]->name(); }
  Layer* layer_by_name(const std::string& name) const;
  int layer_index(const std::string& name) const;  // -1 when absent
  // The data layers' statistics, summed.
  Layer::DataStats data_stats() const;
  // Layer::await_batches over the data layers: "" once every one is ready, else the name
  // of the one given up on.
  std::string await_data(int batches, const std::function<bool()>& give_up);
  bool layer_needs_backward(int i) const { return layer_need_backward_[static_cast<size_t>(i)]; }
  const BlobVec& bottom_vec(int i) const { return bottom_vecs_[static_cast<size_t>(i)]; }
  const BlobVec& top_vec(int i) const { return top_vecs_[static_cast<size_t>(i)]; }

  Blob* blob(const std::string& name) const;  // nullptr when absent
  const std::vector<std::string>& blob_names() const { return blob_names_; }
  // The name of top j or bottom j of layer i (an anonymous top's made-up one included).
  const std::string& top_name(int i, size_t j) const {
    return blob_names_[static_cast<size_t>(top_ids_[static_cast<size_t>(i)][j])];
  }
  const std::string& bottom_name(int i, size_t j) const {
    return blob_names_[static_cast<size_t>(bottom_ids_[static_cast<size_t>(i)][j])];
  }

  // Learnable parameters: one entry per owner (shared copies excluded).
  const std::vector<Blob*>& learnable_params() const { return learnable_params_; }
  const std::vector<float>& params_lr() const { return params_lr_; }
  const std::vector<float>& params_decay() const { return params_decay_; }
  // Whether parameter j of layer i is a shared copy of another layer's parameter.
  bool param_is_shared(int layer, int j) const;
  // The index in learnable_params() of parameter j of layer i; equal for layers sharing it.
  int param_id(int layer, int j) const { return param_ids_[static_cast<size_t>(layer)][static_cast<size_t>(j)]; }
  // "layer 'conv1' parameter 0": the owner of learnable_params()[id], for messages.
  std::string param_owner(size_t id) const;

  // Blobs no layer consumes (losses, accuracies, predictions), in name order as
  // Caffe reports them.
  const std::vector<std::string>& output_names() const { return output_names_; }
  std::vector<Blob*> outputs() const;
  // Loss weight of an output blob (0 for non-loss outputs).
  float output_loss_weight(size_t k) const { return output_loss_weights_[k]; }

  long long num_parameters() const;

  // The outputs ("'a', 'b'") whose shape follows the images of a data layer that gives
  // each its own size (Layer::gives_own_sizes): their values cannot be averaged over
  // batches, so a caller that reports outputs refuses them.
  const std::string& size_following_outputs() const { return size_following_outputs_; }
  // Throws Error naming them, for `reporter` ("training", "crema test") that averages outputs.
  void refuse_size_following_outputs(const std::string& reporter) const;

  // For nets that only run forward (a TEST net, `crema test`): lets blobs whose lives
  // do not overlap share one buffer, as inference frameworks do. A blob's buffer is
  // free once the last layer reading it has run; outputs, data layers' tops and blobs
  // that share memory with a parameter keep their own. Call after construction;
  // callers that read a blob other than an output after forward must not call it.
  // Backward then throws. Returns the bytes of the blobs' buffers before and after.
  struct MemoryPlan {
    long long bytes_before = 0, bytes_after = 0;
    int buffers = 0;
  };
  MemoryPlan reuse_activation_memory();

  // Caffe's debug_info: after each layer's forward and backward, the mean absolute value
  // of its tops / bottom gradients and parameters; log_update_debug_info after an update.
  void set_debug_info(bool on) { debug_info_ = on; }
  bool debug_info() const { return debug_info_; }
  void log_update_debug_info() const;

 private:
  void append_layer(const LayerSpec& spec, Context& ctx, std::map<std::string, int>& available, bool quiet);
  // Warns when the net's data layers read sources of different sizes.
  void warn_unequal_sources() const;
  // Whether the net takes inputs of another size from layers that give each batch its own
  // (Layer::gives_own_sizes); where a layer refuses one, they keep the size set up.
  void check_other_sizes();
  // Refuses labels a data layer holds (Layer::label_extent) that a classifier fed by it
  // (Layer::label_use) cannot take, before the first batch.
  void check_label_ranges() const;
  // The layer and top making blob `id`, looking through the splits crema inserted; {-1, -1}
  // for a blob no layer makes.
  std::pair<int, int> maker_of(int id) const;
  // Throws, naming the readers, where layer li (being appended) was written in place on `top`
  // after other layers read it.
  void refuse_late_in_place(const LayerSpec& spec, size_t li, const std::string& top, size_t j) const;
  // Throws, naming the layer, where a TRAIN net puts a loss_weight on a top without a gradient
  // (Accuracy's), which layer li (being appended: it or the split carrying its weight) has.
  void refuse_loss_without_gradient(const Layer& layer, const LayerSpec& spec, size_t li) const;
  // For a BadLabel of layer `i` (a classifier's label, Embed's index, LSTM's cont) read from its
  // bottom `bottom`: where the value came from (the data layer's sample), or "".
  std::string label_origin(int i, int bottom, float value, const std::string& noun) const;
  // forward() of a net with layers giving their own sizes: the data layers first, taking
  // batches until the other layers take their tops' shapes, then the others. A refused
  // shape is the sample's (Layer::refuse_own_size), so that one image too small for the net
  // is skipped as a bad one rather than stopping the run part way through a step.
  float forward_own_sizes(Context& ctx);
  // The error of the first layer other than a data layer that cannot reshape to the data
  // layers' tops; empty when every one can (at once when the shapes are the last ones taken).
  std::string refusal_of_own_sizes();
  // ": layer 'x' (file:line) makes it, but …" when only a left-out layer makes `blob`.
  std::string left_out_maker(const std::string& blob) const;
  void resolve_params(int layer_index);
  void set_param_gradients();
  void compute_backward_needs(bool force_backward);

  std::string name_;
  NetState state_;
  std::vector<LayerSpec> specs_;  // after filtering and split insertion
  // During construction: top -> the left-out layer making it ("layer 'data' (net.yaml:9:5)")
  // and that layer's tops.
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> left_out_tops_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<BlobPtr> blobs_;
  std::vector<std::string> blob_names_;
  std::map<std::string, int> blob_index_;
  std::vector<BlobVec> bottom_vecs_, top_vecs_;
  std::vector<std::vector<int>> bottom_ids_, top_ids_;
  std::vector<std::vector<bool>> bottom_need_backward_;
  std::vector<bool> layer_need_backward_;
  std::vector<bool> blob_need_backward_;

  std::vector<Blob*> learnable_params_;
  std::vector<float> params_lr_, params_decay_;
  std::vector<bool> params_lr_given_, params_decay_given_;
  std::vector<std::vector<int>> param_ids_;  // [layer][blob] -> index in learnable_params_
  std::map<std::string, std::pair<int, int>> param_owner_by_name_;  // name -> (layer, index)
  std::vector<std::vector<bool>> param_shared_;
  std::vector<std::string> output_names_;  // as users named the blobs
  std::vector<int> output_ids_;
  std::vector<float> output_loss_weights_;
  std::string size_following_outputs_;
  bool own_sizes_ = false;                         // a layer gives its own sizes, and the others take another
  std::vector<std::vector<int>> own_sizes_taken_;  // the own-size tops' shapes last taken
  bool forward_only_ = false;  // reuse_activation_memory was called
  bool debug_info_ = false;
};

// Caffe's layer selection: include rules (any must match) or exclude rules (none may).
bool layer_included(const LayerSpec& spec, const NetState& state);
// Caffe's InsertSplits: a Split layer after every top consumed more than once.
std::vector<LayerSpec> insert_splits(const std::vector<LayerSpec>& layers);

}  // namespace crema
