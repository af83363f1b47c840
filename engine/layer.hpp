// The layer contract (Caffe's, without templates or a global mode):
//   setup(bottom, top)       checks blob counts, calls layer_setup, then reshape
//   reshape(bottom, top)     sizes the tops (and internal buffers) from the bottoms
//   forward(ctx, bottom, top) returns the weighted loss this layer contributes
//   backward(ctx, top, propagate_down, bottom)
// A layer reads its typed parameters in its constructor from spec.params("x_param"),
// owns its parameter blobs in blobs(), and registers itself in one line with
// CREMA_REGISTER_LAYER. The device comes in through the Context; a layer that has
// no GPU path says so through supports() and the net refuses to place it there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/blob.hpp"
#include "engine/context.hpp"
#include "engine/layer_spec.hpp"

namespace crema {

// What a layer with a GPU path returns from supports(): the CPU always, CUDA devices
// when crema was built with CUDA.
inline bool cpu_or_cuda(const Device& device) {
#ifdef CREMA_WITH_CUDA
  return device.type == DeviceType::CPU || device.type == DeviceType::CUDA;
#else
  return device.type == DeviceType::CPU;
#endif
}

class Layer {
 public:
  explicit Layer(const LayerSpec& spec) : spec_(spec) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual const char* type() const = 0;

  void setup(Context& ctx, const BlobVec& bottom, const BlobVec& top);
  virtual void reshape(const BlobVec& bottom, const BlobVec& top) = 0;
  float forward(Context& ctx, const BlobVec& bottom, const BlobVec& top);
  void backward(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom);

  virtual bool supports(const Device& device) const { return device.type == DeviceType::CPU; }

  // Blob-count contract; -1 means no constraint.
  virtual int exact_num_bottom() const { return -1; }
  virtual int min_bottom() const { return -1; }
  virtual int max_bottom() const { return -1; }
  virtual int exact_num_top() const { return -1; }
  virtual int min_top() const { return -1; }
  virtual int max_top() const { return -1; }
  // Appended to a wrong bottom or top count's message ("; ..."): a setting that changes the count.
  virtual std::string blob_count_hint() const { return ""; }
  // Whether top `top` may be bottom `bottom` (in place: one blob). Only layers whose forward
  // and backward stay right when that top overwrites that input say so; setup refuses the
  // rest by name, where Caffe would compute a wrong gradient without a word.
  virtual bool runs_in_place(int /*top*/, int /*bottom*/) const { return false; }
  // Whether the net may create anonymous tops up to min_top/exact_num_top.
  virtual bool auto_top_blobs() const { return false; }
  // Whether force_backward may ask for a gradient of bottom i (labels: no).
  virtual bool allow_force_backward(int /*bottom_index*/) const { return true; }
  // Whether `propagate_down: true` on bottom i makes Caffe's backward of this layer abort
  // ("cannot backpropagate to label inputs"): such a training net is refused at setup. Layers
  // whose Caffe backward just leaves that input alone (Crop's reference, ContrastiveLoss's
  // similarity, HDF5Output) say false.
  virtual bool backward_refuses(int bottom_index) const { return !allow_force_backward(bottom_index); }
  // Whether the tops carry a gradient back at all: piecewise-constant layers (Accuracy, ArgMax,
  // Threshold) pass zeros, so a loss_weight on them is refused at setup.
  virtual bool has_gradient() const { return true; }
  // Loss layers get loss_weight 1 on their first top by default.
  virtual bool is_loss() const { return false; }
  // Data layers: the net treats their tops as inputs (no backward).
  virtual bool is_data() const { return false; }
  // What a data layer reports: time forward spent waiting for its prefetcher, and
  // how many distinct samples it skipped as bad.
  struct DataStats {
    double wait_seconds = 0;
    int64_t batches = 0;
    int64_t bad_samples = 0;
    int64_t samples = -1;  // in its source, one epoch; -1 where it reads none (Input, DummyData)
    bool shuffled = false;  // its samples come in a new order each epoch
    int batch_size = 0;     // samples a batch takes from its source
  };
  virtual DataStats data_stats() const { return {}; }
  // Data layers: waits until the next `batches` batches are ready to be taken (at most as
  // many as the layer prepares ahead), asking `give_up` about every 100 ms; false, with
  // nothing taken, once it says yes. So a stop lands between iterations even while a reader
  // is stuck (a stalled network file system, a FIFO with no writer), where a forward's wait
  // could not be left without an iteration half done.
  virtual bool await_batches(int /*batches*/, const std::function<bool()>& /*give_up*/) { return true; }
  // A data layer whose tops may take each batch's own shape (batch_size 1, images of any
  // size, as Caffe): the net checks at setup that its other layers take another size, and
  // where `layer` refuses one, calls keep_one_size(layer), after which the shape set up stays.
  virtual bool gives_own_sizes() const { return false; }
  virtual void keep_one_size(const std::string& /*layer*/) {}
  // The rest of the net cannot take the last batch's shape (`why`, the refusing layer's
  // error): the layer reports its sample as a bad one (throwing with on_bad_sample: fail),
  // and the net takes the next batch.
  virtual void refuse_own_size(const std::string& why) {
    throw Error("layer '" + spec_.name + "' cannot skip an image the net refuses: " + why);
  }
  // Whether reshape depends on the bottoms' shapes alone and changes nothing else, so that the
  // net may reshape the layer ahead of its forward to try an image's size. Not so for Filter
  // (it reads its selector's values) and the recurrent layers (they clear the state carried
  // between batches when the batch changes).
  virtual bool reshape_is_trial_safe() const { return true; }
  // Class names by label, where the data says them (an image folder's sub-folders).
  virtual std::vector<std::string> class_names() const { return {}; }
  // A data layer's labels (its top 1) where its source knows them all at setup (image lists
  // and folders, IDX files): the least and the greatest, each with a sample that has it, so
  // that a classifier can refuse them before training rather than at the batch that holds
  // one. Not for LMDB or HDF5, where knowing would take a pass over the data.
  struct LabelExtent {
    int min = 0, max = 0;
    std::string min_sample, max_sample;  // "image 'a.png' (train.txt:12)"
  };
  virtual std::optional<LabelExtent> label_extent() const { return std::nullopt; }
  // A classifier reading class labels from bottom 1 (SoftmaxWithLoss, Accuracy, …): the
  // classes of its scores, after setup, and the label it ignores; nullopt for other layers.
  struct LabelUse {
    int classes = 0;
    std::optional<int> ignore;
  };
  virtual std::optional<LabelUse> label_use() const { return std::nullopt; }
  // Data layers: where item n of the batch the last forward gave came from, for messages
  // ("record '00000007' of LMDB 'train_lmdb'"); "" where the layer cannot say.
  virtual std::string describe_taken(int /*n*/) const { return ""; }
  // Samples in one pass over a data layer's source, after setup; -1 where there is no
  // such source (Input, DummyData, and every other layer).
  virtual int64_t source_size() const { return -1; }
  // The files a layer reads its samples from (HDF5Data's .h5 files) and those it writes
  // (HDF5Output's), after setup: a command refuses a net that would write over its own data.
  virtual std::vector<std::string> files_read() const { return {}; }
  virtual std::vector<std::string> files_written() const { return {}; }

  const LayerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  std::vector<BlobPtr>& blobs() { return blobs_; }
  const std::vector<BlobPtr>& blobs() const { return blobs_; }
  float loss_weight(int top_index) const {
    return top_index < static_cast<int>(loss_weights_.size()) ? loss_weights_[static_cast<size_t>(top_index)] : 0.f;
  }
  void set_loss_weight(int top_index, float w);
  bool param_propagate_down(int i) const {
    return i < static_cast<int>(param_propagate_down_.size()) && param_propagate_down_[static_cast<size_t>(i)];
  }
  void set_param_propagate_down(int i, bool value);

  // Saved in snapshots for an exact resume (data readers' positions and RNGs). A data
  // layer's is also kept before each training iteration, to undo the iteration with.
  virtual std::string save_state() const { return {}; }
  virtual void restore_state(const std::string& /*state*/) {}
  // Blobs of its own that forward changes for later iterations: BatchNorm's running
  // statistics in training, a recurrent layer's carried state. The solver copies them (on
  // the device) before each training iteration, to put back when it undoes the iteration
  // (a stop between its passes, an error in them); any other layer whose forward leaves
  // something a later forward reads must list it here.
  virtual std::vector<Blob*> updated_by_forward() { return {}; }

  // The command is done with the net: what the layer writes is completed now, and a failure
  // throws (a destructor could only log it, and the command would end with status 0).
  virtual void finish() {}
  // The command is done with the net and keeps none of what the layer wrote (crema time's
  // passes are no outputs): it is discarded, and what the layer writes to is left as it was.
  virtual void abandon() {}

 protected:
  virtual void layer_setup(Context& /*ctx*/, const BlobVec& /*bottom*/, const BlobVec& /*top*/) {}
  virtual void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) = 0;
  virtual void backward_cpu(Context& /*ctx*/, const BlobVec& /*top*/, const std::vector<bool>& /*propagate_down*/,
                            const BlobVec& /*bottom*/) {}
  virtual void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top);
  virtual void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom);

  LayerSpec spec_;
  std::vector<BlobPtr> blobs_;

 private:
  void check_blob_counts(const BlobVec& bottom, const BlobVec& top) const;
  std::vector<float> loss_weights_;
  std::vector<bool> param_propagate_down_;
};

using LayerFactory = std::function<std::unique_ptr<Layer>(const LayerSpec&)>;

class LayerRegistry {
 public:
  static LayerRegistry& instance();
  void add(const std::string& type, LayerFactory factory);
  // Throws ConfigError (with a did-you-mean) for an unknown type.
  std::unique_ptr<Layer> create(const LayerSpec& spec) const;
  bool has(const std::string& type) const { return factories_.count(type) > 0; }
  std::vector<std::string> types() const;
  // For a type Caffe has and crema does not (Python, MemoryData, WindowData): why, and what
  // to use instead; "" for any other type.
  static std::string caffe_only(const std::string& type);

 private:
  std::map<std::string, LayerFactory> factories_;
};

struct LayerRegistrar {
  LayerRegistrar(const std::string& type, LayerFactory factory) {
    LayerRegistry::instance().add(type, std::move(factory));
  }
};

}  // namespace crema

#define CREMA_REGISTER_LAYER(type_name, Class)                                      \
  static ::crema::LayerRegistrar crema_registrar_##Class(                             \
      type_name, [](const ::crema::LayerSpec& spec) -> std::unique_ptr<::crema::Layer> { \
        return std::make_unique<Class>(spec);                                         \
      })
