#include "layers/data_layer.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "engine/error.hpp"

namespace crema {

DataParams DataParams::parse(MapReader r, Phase phase) {
  DataParams p;
  p.source = r.required("source").str();
  p.label_source = r.get_string("label_source", "");
  p.batch_size = r.required("batch_size").as_int();
  if (p.batch_size <= 0) r.fail("batch_size", "batch_size must be positive");
  if (const Node* b = r.find("backend")) {
    const int v = enum_value(*b, {"LEVELDB", "LMDB", "IDX"});
    if (v != 2) b->fail("backend " + b->str() + " is not supported by this version of crema yet; use backend: IDX");
  }
  p.shuffle = r.get_bool("shuffle", phase == Phase::TRAIN);
  p.rand_skip = r.get_int("rand_skip", 0);
  r.allow({"prefetch", "scale", "mean_file", "crop_size", "mirror", "force_encoded_color"});
  if (r.has("scale") || r.has("mean_file") || r.has("crop_size") || r.has("mirror"))
    r.fail("scale", "data_param's legacy transform fields are not supported; put them in transform_param");
  r.finish();
  return p;
}

std::string default_label_source(const std::string& images) {
  const std::string from = "images-idx3", to = "labels-idx1";
  const size_t at = images.rfind(from);
  if (at == std::string::npos) return {};
  std::string out = images;
  out.replace(at, from.size(), to);
  return out;
}

DataLayer::DataLayer(const LayerSpec& spec)
    : Layer(spec),
      params_(DataParams::parse(spec.params("data_param"), spec.phase)),
      transformer_(TransformParams::parse(spec.params("transform_param")), spec.phase) {}

void DataLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  try {
    images_ = io::read_idx(params_.source);
  } catch (const Error& e) {
    spec_.fail(std::string(e.what()) + " (data_param.source)");
  }
  const auto& d = images_.dims;
  if (d.size() == 3) {
    channels_ = 1, height_ = d[1], width_ = d[2];
  } else if (d.size() == 4) {
    channels_ = d[1], height_ = d[2], width_ = d[3];
  } else {
    spec_.fail("IDX images file '" + params_.source + "' should have rank 3 (N, H, W) or 4 (N, C, H, W)");
  }
  if (top.size() > 1) {
    std::string labels = params_.label_source.empty() ? default_label_source(params_.source) : params_.label_source;
    if (labels.empty())
      spec_.fail("cannot derive the labels file from '" + params_.source +
                 "' (no 'images-idx3' in its name); set data_param.label_source");
    io::IdxArray l;
    try {
      l = io::read_idx(labels);
    } catch (const Error& e) {
      spec_.fail(std::string(e.what()) + " (labels for " + params_.source + ")");
    }
    if (l.dims.size() != 1 || l.dims[0] != d[0])
      spec_.fail("labels file '" + labels + "' holds " + std::to_string(l.dims.empty() ? 0 : l.dims[0]) +
                 " labels but '" + params_.source + "' holds " + std::to_string(d[0]) + " images");
    labels_ = std::move(l.data);
  }
  try {
    transformer_.output_shape(channels_, height_, width_);
  } catch (const Error& e) {
    spec_.fail(e.what());
  }
  sampler_.init(d[0], params_.shuffle, ctx.rng().next_u32());
  transform_rng_.seed(ctx.rng().next_u32());
  for (int i = 0; i < params_.rand_skip; ++i) sampler_.next();
  spdlog::info("{}: {} samples of {}x{}x{} from {}{}", spec_.name, d[0], channels_, height_, width_, params_.source,
               params_.shuffle ? ", shuffled each epoch" : "");
}

void DataLayer::reshape(const BlobVec&, const BlobVec& top) {
  const auto s = transformer_.output_shape(channels_, height_, width_);
  top[0]->reshape({params_.batch_size, s[0], s[1], s[2]});
  if (top.size() > 1) top[1]->reshape({params_.batch_size});
}

void DataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  const size_t sample = static_cast<size_t>(channels_) * height_ * width_;
  const int out_size = top[0]->count(1);
  float* data = top[0]->mutable_cpu_data();                         // (N, C, H', W')
  float* label = top.size() > 1 ? top[1]->mutable_cpu_data() : nullptr;  // (N)
  for (int n = 0; n < params_.batch_size; ++n) {
    const int idx = sampler_.next();
    transformer_.transform(images_.data.data() + sample * static_cast<size_t>(idx), channels_, height_, width_,
                           data + static_cast<size_t>(n) * out_size, transform_rng_);
    if (label) label[n] = static_cast<float>(labels_[static_cast<size_t>(idx)]);
  }
}

std::string DataLayer::save_state() const { return transform_rng_.state() + "\n" + sampler_.save(); }

void DataLayer::restore_state(const std::string& state) {
  const size_t nl = state.find('\n');
  if (nl == std::string::npos) throw Error("corrupt data reader state for layer '" + spec_.name + "'");
  transform_rng_.set_state(state.substr(0, nl));
  sampler_.restore(state.substr(nl + 1));
}

CREMA_REGISTER_LAYER("Data", DataLayer);

}  // namespace crema
