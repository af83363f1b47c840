#include "layers/data_layer.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "engine/error.hpp"
#include "io/datum.hpp"
#include "io/idx.hpp"
#include "io/lmdb.hpp"

namespace crema {

DataParams DataParams::parse(MapReader r, Phase phase) {
  DataParams p;
  p.source = r.required("source").str();
  p.label_source = r.get_string("label_source", "");
  p.batch_size = r.required("batch_size").as_int();
  if (p.batch_size <= 0) r.fail("batch_size", "batch_size must be positive");
  if (const Node* b = r.find("backend")) {
    const int v = enum_value(*b, {"LEVELDB", "LMDB", "IDX"});
    if (v == 0)
      b->fail("backend LEVELDB is not supported: crema reads LMDB and IDX; convert the images into an LMDB with "
              "`crema convert-imageset`");
    p.backend = v == 1 ? "LMDB" : "IDX";
  }
  if (p.backend == "LMDB" && !p.label_source.empty())
    r.fail("label_source", "label_source is for IDX files only: LMDB records carry their labels");
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

class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual int size() const = 0;
  // Sample `index` and its label; the view stays valid until the next read.
  virtual io::DatumPixels read(int index, int* label) = 0;
  // Names sample `index` in errors.
  virtual std::string describe(int index) const = 0;
};

namespace {

// IDX: the whole file in memory, one uint8 (C, H, W) image after the other.
class IdxSource : public DataSource {
 public:
  IdxSource(io::IdxArray images, std::vector<uint8_t> labels, std::string source)
      : images_(std::move(images)), labels_(std::move(labels)), source_(std::move(source)) {
    const auto& d = images_.dims;
    if (d.size() == 3)
      channels_ = 1, height_ = d[1], width_ = d[2];
    else
      channels_ = d[1], height_ = d[2], width_ = d[3];
  }
  int size() const override { return images_.dims[0]; }
  io::DatumPixels read(int index, int* label) override {
    const size_t sample = static_cast<size_t>(channels_) * height_ * width_;
    io::DatumPixels p;
    p.channels = channels_, p.height = height_, p.width = width_;
    p.bytes = images_.data.data() + sample * static_cast<size_t>(index);
    *label = labels_.empty() ? 0 : labels_[static_cast<size_t>(index)];
    return p;
  }
  std::string describe(int index) const override {
    return "IDX file '" + source_ + "' image " + std::to_string(index);
  }

 private:
  io::IdxArray images_;
  std::vector<uint8_t> labels_;
  std::string source_;
  int channels_ = 1, height_ = 0, width_ = 0;
};

// LMDB: keys listed once; each read looks its record up and decodes the Datum
// (and, for an encoded record, the image).
class LmdbSource : public DataSource {
 public:
  LmdbSource(const std::string& path, const DataTransformer& transformer)
      : db_(path), keys_(db_.keys()), channels_(transformer.decode_channels()),
        forces_channels_(transformer.forces_channels()) {
    if (keys_.empty()) throw Error("LMDB '" + path + "' holds no records");
  }
  int size() const override { return static_cast<int>(keys_.size()); }
  io::DatumPixels read(int index, int* label) override {
    const std::string where = describe(index);
    io::decode_datum(db_.get(keys_[static_cast<size_t>(index)]), where, datum_);
    if (forces_channels_ && !datum_.encoded && !warned_raw_) {
      // Caffe logs this too: the pixels are stored decoded, with their own channels.
      spdlog::warn("{}: force_color/force_gray apply to encoded (JPEG/PNG) records only; this one is stored raw",
                   where);
      warned_raw_ = true;
    }
    *label = datum_.label;
    return io::datum_pixels(datum_, channels_, where, decoded_);
  }
  std::string describe(int index) const override {
    return db_.record_name(keys_[static_cast<size_t>(index)]);
  }

 private:
  io::LmdbReader db_;
  std::vector<std::string> keys_;
  int channels_;
  bool forces_channels_;
  bool warned_raw_ = false;
  io::Datum datum_;
  io::ImageU8 decoded_;
};

}  // namespace

DataLayer::DataLayer(const LayerSpec& spec)
    : Layer(spec),
      params_(DataParams::parse(spec.params("data_param"), spec.phase)),
      transformer_(TransformParams::parse(spec.params("transform_param")), spec.phase) {}

DataLayer::~DataLayer() = default;

std::unique_ptr<DataSource> DataLayer::open_source(bool want_labels) const {
  std::string backend = params_.backend;
  if (backend.empty()) backend = std::filesystem::is_directory(params_.source) ? "LMDB" : "IDX";
  if (backend == "LMDB") {
    if (!params_.label_source.empty())
      spec_.fail("label_source is for IDX files only: LMDB records carry their labels");
    try {
      return std::make_unique<LmdbSource>(params_.source, transformer_);
    } catch (const Error& e) {
      spec_.fail(std::string(e.what()) + " (data_param.source)");
    }
  }
  io::IdxArray images;
  try {
    images = io::read_idx(params_.source);
  } catch (const Error& e) {
    spec_.fail(std::string(e.what()) + " (data_param.source)");
  }
  const auto& d = images.dims;
  if (d.size() != 3 && d.size() != 4)
    spec_.fail("IDX images file '" + params_.source + "' should have rank 3 (N, H, W) or 4 (N, C, H, W)");
  std::vector<uint8_t> labels;
  if (want_labels) {
    std::string path = params_.label_source.empty() ? default_label_source(params_.source) : params_.label_source;
    if (path.empty())
      spec_.fail("cannot derive the labels file from '" + params_.source +
                 "' (no 'images-idx3' in its name); set data_param.label_source");
    io::IdxArray l;
    try {
      l = io::read_idx(path);
    } catch (const Error& e) {
      spec_.fail(std::string(e.what()) + " (labels for " + params_.source + ")");
    }
    if (l.dims.size() != 1 || l.dims[0] != d[0])
      spec_.fail("labels file '" + path + "' holds " + std::to_string(l.dims.empty() ? 0 : l.dims[0]) +
                 " labels but '" + params_.source + "' holds " + std::to_string(d[0]) + " images");
    labels = std::move(l.data);
  }
  return std::make_unique<IdxSource>(std::move(images), std::move(labels), params_.source);
}

void DataLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  try {
    transformer_.load_mean_file();
  } catch (const Error& e) {
    spec_.fail(e.what());
  }
  source_ = open_source(top.size() > 1);
  try {
    int label = 0;
    const io::DatumPixels first = source_->read(0, &label);
    channels_ = first.channels, height_ = first.height, width_ = first.width;
    transformer_.output_shape(channels_, height_, width_);
  } catch (const Error& e) {
    spec_.fail(e.what());
  }
  sampler_.init(source_->size(), params_.shuffle, ctx.rng().next_u32());
  transform_rng_.seed(ctx.rng().next_u32());
  for (int i = 0; i < params_.rand_skip; ++i) sampler_.next();
  spdlog::info("{}: {} samples of {}x{}x{} from {}{}", spec_.name, source_->size(), channels_, height_, width_,
               params_.source, params_.shuffle ? ", shuffled each epoch" : "");
}

void DataLayer::reshape(const BlobVec&, const BlobVec& top) {
  const auto s = transformer_.output_shape(channels_, height_, width_);
  top[0]->reshape({params_.batch_size, s[0], s[1], s[2]});
  if (top.size() > 1) top[1]->reshape({params_.batch_size});
}

void DataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  const int out_size = top[0]->count(1);
  float* data = top[0]->mutable_cpu_data();                              // (N, C, H', W')
  float* label = top.size() > 1 ? top[1]->mutable_cpu_data() : nullptr;  // (N)
  for (int n = 0; n < params_.batch_size; ++n) {
    const int idx = sampler_.next();
    int sample_label = 0;
    const io::DatumPixels p = source_->read(idx, &sample_label);
    if (p.channels != channels_ || p.height != height_ || p.width != width_) {
      // Records of another size fit only where the crop cuts both to the same shape.
      std::string why = "the first record's is " + io::shape_text(channels_, height_, width_);
      try {
        if (p.channels == channels_ && transformer_.output_shape(p.channels, p.height, p.width) ==
                                           transformer_.output_shape(channels_, height_, width_))
          why.clear();
      } catch (const Error& e) {
        why = e.what();
      }
      if (!why.empty())
        throw Error("data layer '" + spec_.name + "': " + source_->describe(idx) + " is " +
                    io::shape_text(p.channels, p.height, p.width) + " but " + why +
                    "; convert the images to one size (crema convert-imageset --resize WxH) or crop them with "
                    "transform_param.crop_size");
    }
    float* out = data + static_cast<size_t>(n) * out_size;  // out: (C, H', W')
    if (p.bytes)
      transformer_.transform(p.bytes, p.channels, p.height, p.width, out, transform_rng_);
    else
      transformer_.transform(p.floats, p.channels, p.height, p.width, out, transform_rng_);
    if (label) label[n] = static_cast<float>(sample_label);
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
