#include "layers/image_batch_layer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/error.hpp"
#include "io/datum.hpp"

namespace crema {

ImageBatchParams ImageBatchParams::parse(MapReader& r, const LayerSpec& spec, int default_batch_size) {
  ImageBatchParams p;
  p.batch_size = default_batch_size > 0 ? r.get_int("batch_size", default_batch_size) : r.required("batch_size").as_int();
  if (p.batch_size <= 0) r.fail("batch_size", "batch_size must be positive");
  // With other data layers in the net their samples pair up by position, and a recurrent
  // layer's cont makes them timesteps: read in order, as Caffe.
  const std::string in_step = in_step_reason(spec);
  p.shuffle_written = r.has("shuffle");
  p.shuffle = r.get_bool("shuffle", spec.phase == Phase::TRAIN && in_step.empty());
  p.rand_skip = r.get_int("rand_skip", 0);
  if (p.rand_skip < 0) r.fail("rand_skip", "rand_skip must not be negative");
  p.prefetch = parse_prefetch_options(r, spec.name, in_step);
  return p;
}

ImageBatchLayer::ImageBatchLayer(const LayerSpec& spec, ImageBatchParams params)
    : PrefetchedDataLayer(spec),
      transformer_(TransformParams::parse(spec.params("transform_param")), spec.phase),
      params_(std::move(params)) {}

// The workers read this layer's members: they stop before those go.
ImageBatchLayer::~ImageBatchLayer() { prefetcher_.reset(); }

void ImageBatchLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  try {
    transformer_.load_mean_file();
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    refuse_source(spec_, "transform_param", transformer_.params().mean_file, e.what(), "mean_file");
  }
  try {
    source_ = open_source(top.size() > 1);
  } catch (const ConfigError&) {
    throw;  // already at its key
  } catch (const Error& e) {
    spec_.fail(e.what());
  }
  // The shape comes from the first sample that can be read; bad ones before it are
  // reported when the prefetcher meets them.
  RawSample first;
  std::string first_bad;
  const int limit = std::min(source_->size(), 1000);
  bool found = false;
  for (int i = 0; i < limit && !found; ++i) {
    try {
      source_->read(i, first);
      found = true;
    } catch (const BadSample& e) {
      if (!params_.prefetch.skip_bad)
        spec_.fail(std::string(e.what()) + " (on_bad_sample: fail; " + params_.prefetch.fail_advice + ")");
      if (first_bad.empty()) first_bad = e.what();
    }
  }
  if (!found)
    spec_.fail("none of the first " + std::to_string(limit) + " samples of " + source_name() +
               " can be read; the first: " + first_bad);
  channels_ = first.channels, height_ = first.height, width_ = first.width;
  try {
    out_shape_ = transformer_.output_shape(channels_, height_, width_);
  } catch (const Error& e) {
    spec_.fail(e.what());
  }
  order_seed_ = order_seed(ctx, params_.shuffle);
  sample_seed_ = augment_seed(ctx);
  staged_ = staged_for(ctx, params_.prefetch);
  labels_ = top.size() > 1;
  shaped_ = params_.batch_size == 1 && transformer_.output_follows_input();
  make_prefetcher();
  spdlog::info("{}: {} samples of {} from {}{}; {} prefetch thread(s)", spec_.name, source_->size(),
               io::shape_text(channels_, height_, width_), source_name(),
               params_.shuffle ? ", shuffled each epoch" : "", params_.prefetch.threads);
  say_pairing(params_.shuffle, params_.shuffle_written, params_.prefetch, false);
  // Caffe flips TEST images at random as well; crema's scores are of the images as they are,
  // the same at every pass. Said, as a zoo net's scores can differ a little from Caffe's.
  if (spec_.phase == Phase::TEST && transformer_.params().mirror)
    spdlog::warn(
        "{}: transform_param.mirror is set in a TEST net; crema flips only TRAIN images (Caffe flips TEST "
        "images at random too), so the scores are of the images as they are",
        spec_.name);
}

void ImageBatchLayer::make_prefetcher() {
  EpochSampler sampler;
  sampler.init(source_->size(), params_.shuffle, order_seed_);
  // Whole passes over the source change nothing a user can tell apart: skip the remainder
  // (a huge rand_skip would otherwise step through billions of samples at setup).
  for (int i = 0; i < params_.rand_skip % source_->size(); ++i) sampler.next();
  std::vector<size_t> sizes = {static_cast<size_t>(out_shape_[0]) * out_shape_[1] * out_shape_[2]};
  if (labels_) sizes.push_back(1);
  if (shaped_)
    prefetcher_ =
        std::make_unique<Prefetcher>(staged_, std::move(sampler), sample_seed_, std::move(sizes),
                                     [this](int index, Rng& rng, ShapedSample& out) { fill_shaped(index, rng, out); });
  else
    prefetcher_ =
        std::make_unique<Prefetcher>(staged_, std::move(sampler), sample_seed_, params_.batch_size, std::move(sizes),
                                     [this](int index, Rng& rng, float* const* outs) { fill(index, rng, outs); });
}

void ImageBatchLayer::keep_one_size(const std::string& layer) {
  if (!shaped_) return;
  shaped_ = false;
  one_size_layer_ = layer;
  make_prefetcher();  // not started yet: nothing was read
}

void ImageBatchLayer::refuse_own_size(const std::string& why) {
  if (!shaped_ || taken_sample_ < 0 || taken_shape_.size() != 4) throw Error(why);
  // taken_shape_: (1, C, H, W) after the transform
  prefetcher_->refuse(taken_sample_, source_->describe(taken_sample_) + " comes to the net as " +
                                         io::shape_text(taken_shape_[1], taken_shape_[2], taken_shape_[3]) +
                                         ", a size it cannot take: " + why);
}

void ImageBatchLayer::fill(int index, Rng& rng, float* const* outs) const {
  thread_local RawSample raw;  // reused: each worker decodes sample after sample
  source_->read(index, raw);
  if (raw.channels != channels_ || raw.height != height_ || raw.width != width_) {
    // Samples of another size fit only where the transform cuts both to one shape.
    std::string why = "the first sample's is " + io::shape_text(channels_, height_, width_);
    // Smaller than the crop: cropping is not the way out.
    const bool under_crop = transformer_.crop_too_large(raw.height, raw.width);
    try {
      if (raw.channels == channels_ && transformer_.output_shape(raw.channels, raw.height, raw.width) == out_shape_)
        why.clear();
    } catch (const Error& e) {
      why = e.what();
    }
    // The keys this layer has: ImageData resizes as it reads, a Data layer's records are as stored.
    const std::string one_size = spec_.type == "ImageData"
                                     ? "image_data_param.new_height/new_width"
                                     : "convert the images again with convert-imageset --resize, or "
                                       "transform_param.resize with crop_size";
    // With batch_size 1 and no crop, only a layer taking one size keeps the first one.
    if (!why.empty() && !one_size_layer_.empty() && raw.channels == channels_)
      why += ", the one size layer '" + one_size_layer_ + "' takes";
    if (!why.empty())
      throw BadSample(
          source_->describe(index) + " is " + io::shape_text(raw.channels, raw.height, raw.width) + " but " + why +
          (under_crop ? "; give the images one size of at least the crop (" + one_size +
                            "), or a smaller transform_param.crop_size"
                      : "; give the images one size (" + one_size + ") or crop them with transform_param.crop_size"));
  }
  transform(raw, rng, outs[0]);
  if (labels_) outs[1][0] = static_cast<float>(raw.label);
}

void ImageBatchLayer::transform(const RawSample& raw, Rng& rng, float* out) const {
  if (raw.floats.empty())
    transformer_.transform(raw.bytes.data(), raw.channels, raw.height, raw.width, out, rng);
  else
    transformer_.transform(raw.floats.data(), raw.channels, raw.height, raw.width, out, rng);
}

void ImageBatchLayer::fill_shaped(int index, Rng& rng, ShapedSample& out) const {
  thread_local RawSample raw;
  source_->read(index, raw);
  if (raw.channels != channels_)
    throw BadSample(source_->describe(index) + " has " + std::to_string(raw.channels) +
                    " channel(s) where the first sample has " + std::to_string(channels_) +
                    (spec_.type == "ImageData" ? "; image_data_param.is_color decodes every image with 3 or 1"
                                               : "; give the images one number of channels (transform_param."
                                                 "force_color or force_gray decode encoded records so)"));
  std::vector<int> shape;
  try {
    shape = transformer_.output_shape(raw.channels, raw.height, raw.width);
  } catch (const Error& e) {
    throw BadSample(source_->describe(index) + " is " + io::shape_text(raw.channels, raw.height, raw.width) + ": " +
                    e.what());
  }
  out.values.resize(labels_ ? 2 : 1);
  out.shapes.resize(out.values.size());
  out.shapes[0] = {1, shape[0], shape[1], shape[2]};
  out.values[0].resize(static_cast<size_t>(shape[0]) * shape[1] * shape[2]);
  transform(raw, rng, out.values[0].data());
  if (labels_) {
    out.shapes[1] = {1};
    out.values[1] = {static_cast<float>(raw.label)};
  }
}

void ImageBatchLayer::reshape(const BlobVec&, const BlobVec& top) {
  if (shaped_ && top[0]->num_axes() == 4) return;  // the last batch's shape until forward takes the next
  top[0]->reshape({params_.batch_size, out_shape_[0], out_shape_[1], out_shape_[2]});
  if (top.size() > 1) top[1]->reshape({params_.batch_size});
}

std::vector<std::string> ImageBatchLayer::class_names() const {
  return source_ ? source_->class_names() : std::vector<std::string>{};
}

std::optional<Layer::LabelExtent> ImageBatchLayer::label_extent() const {
  if (!source_ || !source_->knows_labels() || source_->size() == 0) return std::nullopt;
  int lo = 0, hi = 0;  // the samples holding the least and the greatest label
  for (int i = 1; i < source_->size(); ++i) {
    const int l = source_->label(i);
    if (l < source_->label(lo)) lo = i;
    if (l > source_->label(hi)) hi = i;
  }
  return LabelExtent{source_->label(lo), source_->label(hi), source_->describe_label(lo), source_->describe_label(hi)};
}

}  // namespace crema
