#include "engine/layer.hpp"

#include <map>
#include <vector>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"

namespace crema {

void Layer::check_blob_counts(const BlobVec& bottom, const BlobVec& top) const {
  auto fail = [&](const std::string& what) { spec_.fail(std::string(type()) + " layer " + what + blob_count_hint()); };
  const int nb = static_cast<int>(bottom.size()), nt = static_cast<int>(top.size());
  if (exact_num_bottom() >= 0 && nb != exact_num_bottom())
    fail("takes " + std::to_string(exact_num_bottom()) + " bottom blob(s), got " + std::to_string(nb));
  if (min_bottom() >= 0 && nb < min_bottom())
    fail("takes at least " + std::to_string(min_bottom()) + " bottom blob(s), got " + std::to_string(nb));
  if (max_bottom() >= 0 && nb > max_bottom())
    fail("takes at most " + std::to_string(max_bottom()) + " bottom blob(s), got " + std::to_string(nb));
  if (exact_num_top() >= 0 && nt != exact_num_top())
    fail("produces " + std::to_string(exact_num_top()) + " top blob(s), got " + std::to_string(nt));
  if (min_top() >= 0 && nt < min_top())
    fail("produces at least " + std::to_string(min_top()) + " top blob(s), got " + std::to_string(nt));
  if (max_top() >= 0 && nt > max_top())
    fail("produces at most " + std::to_string(max_top()) + " top blob(s), got " + std::to_string(nt));
}

void Layer::setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  check_blob_counts(bottom, top);
  for (size_t t = 0; t < top.size(); ++t)
    for (size_t b = 0; b < bottom.size(); ++b)
      if (top[t] == bottom[b] && !runs_in_place(static_cast<int>(t), static_cast<int>(b)))
        spec_.fail(std::string(type()) +
                   " cannot run in place (a top that is also its bottom): give the top a name of its own. Only the "
                   "element-wise layers (ReLU, Dropout, Power, …), Scale, Bias, Softmax, MVN and BatchNorm may write "
                   "over their bottom, and LSTM/RNN their h_T/c_T over h_0/c_0");
  layer_setup(ctx, bottom, top);
  reshape(bottom, top);
  // Loss weights: explicit ones from the spec, else 1 on a loss layer's first top.
  loss_weights_.assign(top.size(), 0.f);
  if (!spec_.loss_weight.empty()) {
    if (spec_.loss_weight.size() != top.size())
      spec_.fail("loss_weight has " + std::to_string(spec_.loss_weight.size()) + " value(s) but the layer has " +
                 std::to_string(top.size()) + " top(s)");
    loss_weights_ = spec_.loss_weight;
  } else if (is_loss() && !top.empty()) {
    loss_weights_[0] = 1.f;
  }
  if (param_propagate_down_.size() != blobs_.size()) param_propagate_down_.resize(blobs_.size(), true);
}

void Layer::set_loss_weight(int top_index, float w) {
  if (loss_weights_.size() <= static_cast<size_t>(top_index)) loss_weights_.resize(static_cast<size_t>(top_index) + 1, 0.f);
  loss_weights_[static_cast<size_t>(top_index)] = w;
}

void Layer::set_param_propagate_down(int i, bool value) {
  if (param_propagate_down_.size() <= static_cast<size_t>(i)) param_propagate_down_.resize(static_cast<size_t>(i) + 1, true);
  param_propagate_down_[static_cast<size_t>(i)] = value;
}

float Layer::forward(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  reshape(bottom, top);
  if (ctx.on_gpu())
    forward_gpu(ctx, bottom, top);
  else
    forward_cpu(ctx, bottom, top);
  float loss = 0;
  for (size_t i = 0; i < top.size(); ++i) {
    const float w = loss_weight(static_cast<int>(i));
    if (w == 0.f) continue;
    // Losses are reduced on the host; the tops are small (usually one value).
    const float* d = nullptr;
    std::vector<float> from_device;
    if (ctx.on_gpu() && top[i]->data_memory()->head() == SyncedMemory::Head::AtGpu) {
      // Queued behind the kernels that wrote it and waited for on their stream alone
      // (a host read of the blob would wait for the whole device, the prefetcher's copies
      // included); the blob stays current on the device only.
      from_device.resize(static_cast<size_t>(top[i]->count()));
      cuda::copy_async(from_device.data(), top[i]->gpu_data(), from_device.size() * sizeof(float),
                       ctx.cuda()->stream());
      cuda::synchronize_stream(ctx.cuda()->stream());
      d = from_device.data();
    } else {
      d = top[i]->cpu_data();
    }
    double s = 0;
    for (int j = 0; j < top[i]->count(); ++j) s += d[j];
    loss += w * static_cast<float>(s);
  }
  return loss;
}

void Layer::backward(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom) {
  if (ctx.on_gpu())
    backward_gpu(ctx, top, propagate_down, bottom);
  else
    backward_cpu(ctx, top, propagate_down, bottom);
}

void Layer::forward_gpu(Context& ctx, const BlobVec&, const BlobVec&) {
  spec_.fail(std::string(type()) + " layer has no GPU implementation for " + ctx.device().str() +
             " yet; run it with solver_mode: CPU");
}

void Layer::backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>&, const BlobVec&) {
  spec_.fail(std::string(type()) + " layer has no GPU implementation for " + ctx.device().str() +
             " yet; run it with solver_mode: CPU");
}

LayerRegistry& LayerRegistry::instance() {
  static LayerRegistry registry;
  return registry;
}

void LayerRegistry::add(const std::string& type, LayerFactory factory) {
  if (factories_.count(type)) throw Error("layer type '" + type + "' registered twice");
  factories_[type] = std::move(factory);
}

std::vector<std::string> LayerRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories_) out.push_back(k);
  return out;
}

namespace {
// Caffe's layer types that crema does not provide, and what to use instead.
const std::map<std::string, std::string>& caffe_types_left_out() {
  static const std::map<std::string, std::string> advice = {
      {"Python",
       "Caffe's Python layer runs Python code inside pycaffe, and crema embeds no Python; write the layer's "
       "work as crema layers, or compute its output beforehand into an HDF5 file read by HDF5Data"},
      {"MemoryData",
       "Caffe's MemoryData is filled by a program through pycaffe or the C++ API; from the command line use "
       "Input (crema classify fills a deploy net's Input) or a Data, ImageData or HDF5Data layer"},
      {"WindowData",
       "Caffe's WindowData (R-CNN's window file, deprecated in Caffe) is not provided; crop the windows into "
       "images listed for ImageData, or into an HDF5 file for HDF5Data"},
  };
  return advice;
}
}  // namespace

std::string LayerRegistry::caffe_only(const std::string& type) {
  const auto it = caffe_types_left_out().find(type);
  return it == caffe_types_left_out().end() ? "" : it->second;
}

std::unique_ptr<Layer> LayerRegistry::create(const LayerSpec& spec) const {
  auto it = factories_.find(spec.type);
  if (it == factories_.end()) {
    const Node* type_node = spec.config ? spec.config->find("type") : nullptr;
    const Mark& m = type_node ? type_node->mark() : spec.mark;
    if (const std::string why = caffe_only(spec.type); !why.empty())
      throw ConfigError(m, spec.path + ".type", "layer type '" + spec.type + "' is not supported: " + why);
    throw ConfigError(m, spec.path + ".type", "unknown layer type '" + spec.type + "'" + did_you_mean(spec.type, types()));
  }
  auto layer = it->second(spec);
  // Every key of the layer map must be either shared or read by the layer's constructor.
  if (spec.config) {
    MapReader r(spec.config);
    r.allow(common_layer_keys());
    r.allow(*spec.read_keys);
    // A parameter block of another type (pooling_param on an InnerProduct layer) is the
    // usual way to get here: say which block this type reads.
    r.finish([&](const std::string& key) -> std::string {
      const auto is_block = [](const std::string& k) { return k.size() > 6 && k.ends_with("_param"); };
      if (key == "lr_mult" || key == "decay_mult")
        return "'" + key + "' belongs in the layer's param list, one entry per parameter blob (weights, then bias): " +
               "write param: [{" + key + ": …}, {" + key + ": …}]";
      // V1's per-blob lists inside a current-format layer (only a `layers` net is upgraded).
      if (key == "blobs_lr" || key == "weight_decay") {
        // Caffe's usual values: the bias learns twice as fast and takes no decay.
        const bool lr = key == "blobs_lr";
        const std::string now = lr ? "lr_mult" : "decay_mult", bias = lr ? "2" : "0";
        return "'" + key + "' is the V1 format's (layers { … }); in a layer { … } it is " + now +
               " in the param list, one entry per parameter blob: param { " + now + ": 1 } param { " + now + ": " +
               bias + " } (YAML: param: [{" + now + ": 1}, {" + now + ": " + bias + "}])";
      }
      if (!is_block(key)) return "";
      std::string own;
      for (const auto& k : *spec.read_keys)
        if (is_block(k) && k != "transform_param") own += (own.empty() ? "" : " and ") + k;
      return "'" + key + "' is not a parameter block of " + spec.type + " layers; " +
             (own.empty() ? spec.type + " takes none" : spec.type + " reads " + own) +
             " (check the layer's type, or move the values into its own block)";
    });
  }
  return layer;
}

}  // namespace crema
