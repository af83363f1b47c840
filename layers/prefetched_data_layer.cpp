#include "layers/prefetched_data_layer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "io/files.hpp"

namespace crema {

namespace {
// The layer types that read a source sample by sample, with the parameter map each reads.
const std::map<std::string, std::string>& reader_params() {
  static const std::map<std::string, std::string> params = {
      {"Data", "data_param"}, {"ImageData", "image_data_param"}, {"HDF5Data", "hdf5_data_param"}};
  return params;
}

// Whether reader `l` of a net shuffles: its written `shuffle`, else not (beside other
// readers every default is Caffe's order).
bool reader_shuffles(const NetLayerRef& l) {
  const auto it = reader_params().find(l.type);
  const Node* params = l.config && it != reader_params().end() ? l.config->find(it->second) : nullptr;
  const Node* shuffle = params && params->is_map() ? params->find("shuffle") : nullptr;
  try {
    return shuffle && shuffle->as_bool();
  } catch (const Error&) {  // a bad value is refused at that layer's own setup
    return false;
  }
}

// "'a'", "'a' and 'b'", "'a', 'b' and 'c'"; unquoted, names already quoted ("LSTM 'lstm'").
std::string quoted_list(const std::vector<std::string>& names, bool quote = true) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + (quote ? "'" + names[i] + "'" : names[i]);
  return out;
}
}  // namespace

void refuse_source(const LayerSpec& spec, const std::string& params_key, const std::string& source,
                   const std::string& why, const std::string& key) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string hint;
  if (!source.empty() && fs::path(source).is_relative() && !fs::exists(source, ec)) {
    hint = " (a relative " + key + " is read from the working directory, " + fs::current_path(ec).string() +
           ", as in Caffe";
    const Mark& at = spec.mark;
    if (at.file) {
      const fs::path beside = fs::path(*at.file).parent_path() / source;
      if (!fs::path(*at.file).parent_path().empty() && fs::exists(beside, ec))
        hint += "; '" + beside.string() + "' exists beside the config: run from there, or write that path";
    }
    hint += ")";
  }
  spec.fail_at(params_key, key, why + hint);
}

void refuse_source_of_another_layer(const LayerSpec& spec, const std::string& params_key, const std::string& source) {
  const std::string kind = io::what_is(source);
  if (kind.empty()) return;
  // What each layer reads, and what reads the others' sources.
  const bool data = spec.type == "Data", images = spec.type == "ImageData", hdf5 = spec.type == "HDF5Data";
  const bool own = (data && (kind == "an LMDB database" || kind == "an IDX file" || kind == "a LevelDB database")) ||
                   (images && (kind == "a text file" || kind == "a folder")) ||
                   (hdf5 && (kind == "a text file" || kind == "an HDF5 file"));
  if (own) return;
  std::string reader;
  if (kind == "an LMDB database" || kind == "an IDX file")
    reader = "a Data layer reads it (data_param.source)";
  else if (kind == "an HDF5 file")
    reader = "an HDF5Data layer reads it, listed in a text file (hdf5_data_param.source names the list)";
  else if (kind == "a text file")
    reader =
        "an image list ('path label' lines) is an ImageData layer's source (image_data_param.source), or make an "
        "LMDB of it with crema convert-imageset";
  else if (kind == "a folder")
    reader = "a folder of class folders of images is an ImageData layer's source (image_data_param.source)";
  else if (kind == "an image")
    reader = "list it with its label in a text file ('path label' lines), which an ImageData layer reads";
  else
    return;  // a LevelDB database outside Data: the reader says what to do
  const std::string reads = data     ? "an LMDB database or an IDX images file"
                            : images ? "a text file listing images with their labels, or a folder of class folders"
                                     : "a text file listing HDF5 files, one per line";
  const std::string said = data && kind == "a folder" ? "a folder with no LMDB database in it (no data.mdb)" : kind;
  spec.fail_at(params_key, "source",
               "'" + source + "' is " + said + ": " + reader +
                   (images && kind == "an image"
                        ? ""  // the advice was this layer's
                        : "; " + std::string(data ? "a " : "an ") + spec.type + " layer reads " + reads));
}

std::vector<std::string> paired_readers(const LayerSpec& spec) {
  std::vector<std::string> others;
  if (spec.net_layers)
    for (const NetLayerRef& l : *spec.net_layers)
      if (l.name != spec.name && reader_params().count(l.type)) others.push_back(l.name);
  return others;
}

std::vector<std::string> sequence_readers(const LayerSpec& spec) {
  std::vector<std::string> readers;
  if (!spec.net_layers) return readers;
  for (const NetLayerRef& l : *spec.net_layers) {
    if ((l.type != "LSTM" && l.type != "RNN") || !l.config) continue;
    const Node* bottom = l.config->find("bottom");
    if (!bottom || !bottom->is_seq() || bottom->items().size() < 2 || !bottom->items()[1].is_scalar()) continue;
    const std::string cont = bottom->items()[1].str();
    if (std::find(spec.top.begin(), spec.top.end(), cont) != spec.top.end())
      readers.push_back(l.type + " '" + l.name + "'");
  }
  return readers;
}

std::string in_step_reason(const LayerSpec& spec) {
  if (!paired_readers(spec).empty())
    return "fix the sample or take it out of the source: this layer's samples pair up with another data "
           "layer's by position, so skipping it would shift every pair after it";
  const std::vector<std::string> sequences = sequence_readers(spec);
  if (!sequences.empty())
    return "fix the sample or take it out of the source: this layer's samples are the timesteps of the sequences read "
           "by " +
           quoted_list(sequences, false) + ", so skipping one would join the timesteps on either side of it";
  return "";
}

uint64_t PrefetchedDataLayer::order_seed(Context& ctx, bool shuffle) const {
  const std::vector<std::string> others = paired_readers(spec_);
  if (!shuffle || others.empty()) return ctx.rng().next_u32();
  // One seed per net (the TRAIN net and the test nets share the context).
  return ctx.shared_seed("data order of net " + std::to_string(spec_.net_serial));
}

uint64_t PrefetchedDataLayer::augment_seed(Context& ctx) const {
  if (paired_readers(spec_).empty()) return ctx.rng().next_u32();
  return ctx.shared_seed("augmentation of net " + std::to_string(spec_.net_serial));
}

void PrefetchedDataLayer::say_pairing(bool shuffle, bool shuffle_written, const PrefetchOptions& options,
                                      bool own_blocks) const {
  if (const std::vector<std::string> sequences = sequence_readers(spec_); !sequences.empty()) {
    const std::string readers = quoted_list(sequences, false);
    if (!shuffle_written && !options.skip_bad_written && paired_readers(spec_).empty())
      spdlog::info(
          "{}: its samples are the timesteps of the sequences read by {} (one of its tops is the cont): read in "
          "order, and a bad sample is an error (on_bad_sample: fail)",
          spec_.name, readers);
    if (shuffle)
      spdlog::warn(
          "{}: shuffle: true reorders the timesteps of the sequences read by {} (one of its tops is the cont), "
          "which then learns from steps out of order; leave shuffle out (a sequence file holds T rows of N streams "
          "a batch, one row per timestep; see README, Recurrent layers)",
          spec_.name, readers);
    if (options.skip_bad)
      spdlog::warn(
          "{}: on_bad_sample: skip drops a bad row, a timestep of every stream of the sequences read by {}, joining "
          "the steps on either side of it; on_bad_sample: fail stops at it",
          spec_.name, readers);
  }
  const std::vector<std::string> others = paired_readers(spec_);
  if (others.empty()) return;
  const std::string with = quoted_list(others);
  std::vector<std::string> in_order;  // the others that do not shuffle, when this one does
  if (shuffle)
    for (const NetLayerRef& l : *spec_.net_layers)
      if (std::find(others.begin(), others.end(), l.name) != others.end() && !reader_shuffles(l))
        in_order.push_back(l.name);
  std::vector<std::string> parts;
  if (!shuffle_written && spec_.phase == Phase::TRAIN)
    parts.push_back("read in order, as Caffe reads it (shuffle: true on each of them shuffles them in one order)");
  else if (shuffle && !own_blocks && in_order.empty())
    parts.push_back("shuffled in one order with them (paired where they hold as many samples)");
  if (!options.skip_bad_written)
    parts.push_back(
        "a bad sample is an error (on_bad_sample: fail), as skipping it in one layer only would shift "
        "the pairs");
  std::string said;
  for (const std::string& part : parts) said += (said.empty() ? "" : "; ") + part;
  if (!said.empty())
    spdlog::info("{}: its samples pair up by position with those of the net's other data layer(s) {}: {}", spec_.name,
                 with, said);
  if (shuffle && !in_order.empty())
    spdlog::warn(
        "{}: shuffle: true, but the net's other data layer(s) {} read in order: their samples do not pair up; write "
        "shuffle: true on each of them, or on none",
        spec_.name, quoted_list(in_order));
  else if (shuffle && own_blocks)
    spdlog::warn(
        "{}: shuffle: true shuffles this HDF5Data layer's rows block by block, in no other layer's order: its "
        "samples do not pair up with those of {}; shuffle the rows when writing the files, or give every top one "
        "HDF5Data layer",
        spec_.name, with);
  if (options.skip_bad)
    spdlog::warn(
        "{}: on_bad_sample: skip with other data layers in the net ({}): a skipped sample shifts this layer's "
        "batches against theirs, so their samples no longer pair up; on_bad_sample: fail keeps them in step",
        spec_.name, with);
}

void PrefetchedDataLayer::restore_state(const std::string& state) {
  if (!prefetcher_) throw Error("data layer '" + spec_.name + "' restored before setup");
  try {
    prefetcher_->restore(state);
  } catch (const Error& e) {
    throw Error("data layer '" + spec_.name + "': " + e.what());
  }
}

Layer::DataStats PrefetchedDataLayer::data_stats() const {
  if (!prefetcher_) return {};
  return {prefetcher_->wait_seconds(), prefetcher_->batches(),  prefetcher_->bad_samples(),
          prefetcher_->samples(),      prefetcher_->shuffled(), prefetcher_->batch_size()};
}

PrefetchOptions PrefetchedDataLayer::staged_for(const Context& ctx, PrefetchOptions options) {
  options.device = ctx.on_gpu() ? ctx.device().id : -1;
  return options;
}

namespace {
// Gives a batch's buffers back however the step ends; a lost set would leave the
// producer waiting for one.
struct Recycler {
  Prefetcher& prefetcher;
  Prefetcher::Batch& batch;
  void* stream = nullptr;
  ~Recycler() {
    try {
      prefetcher.recycle(batch, stream);
    } catch (const Error&) {  // the device failed: already being reported
      prefetcher.recycle(batch);
    }
  }
};
}  // namespace

std::string PrefetchedDataLayer::describe_taken(int n) const {
  if (n < 0 || static_cast<size_t>(n) >= taken_indices_.size() || taken_indices_[static_cast<size_t>(n)] < 0) return "";
  return describe_sample(taken_indices_[static_cast<size_t>(n)]);
}

void PrefetchedDataLayer::take_shapes(const Prefetcher::Batch& batch, const BlobVec& top) {
  taken_indices_ = batch.indices;
  if (!batch.shapes.empty() && !batch.indices.empty()) {
    taken_sample_ = batch.indices[0];
    taken_shape_ = batch.shapes[0];
  }
  for (size_t t = 0; t < batch.shapes.size() && t < top.size(); ++t) {
    if (!said_reshaped_ && top[t]->shape() != batch.shapes[t]) {
      said_reshaped_ = true;
      spdlog::info(
          "{}: a sample of shape {} after {}: with batch_size 1 and no crop, each image goes through the net at its "
          "own size, as in Caffe",
          spec_.name, shape_string(batch.shapes[t]), top[t]->shape_string());
    }
    top[t]->reshape(batch.shapes[t]);
  }
}

void PrefetchedDataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  Prefetcher::Batch batch = prefetcher_->next();
  Recycler recycler{*prefetcher_, batch};
  take_shapes(batch, top);
  for (size_t t = 0; t < top.size(); ++t)  // batch.host[t]: (batch_size, sample size of top t)
    std::copy_n(batch.host[t], batch.counts[t], top[t]->mutable_cpu_data());
}

void PrefetchedDataLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (!ctx.on_gpu() || !ctx.cuda()) return forward_cpu(ctx, bottom, top);
  Prefetcher::Batch batch = prefetcher_->next();
  Recycler recycler{*prefetcher_, batch};
  take_shapes(batch, top);
  if (batch.device.empty()) {  // not staged: the tops are filled on the host and copied over when read
    for (size_t t = 0; t < top.size(); ++t) std::copy_n(batch.host[t], batch.counts[t], top[t]->mutable_cpu_data());
    return;
  }
  void* stream = ctx.cuda()->stream();
  recycler.stream = stream;  // the arrays are free once the stream has run the copies below
  for (size_t t = 0; t < top.size(); ++t)  // device to device, in order with the step's kernels
    cuda::copy_async(top[t]->mutable_gpu_data(), batch.device[t], batch.counts[t] * sizeof(float), stream);
}

}  // namespace crema
