#include "layers/data_transformer.hpp"

#include <cstdint>

#include "engine/error.hpp"
#include "io/caffe_binary.hpp"
#include "io/datum.hpp"

namespace crema {

TransformParams TransformParams::parse(MapReader r) {
  TransformParams p;
  p.scale = r.get_float("scale", 1.f);
  p.mean_value = r.get_floats("mean_value");
  p.mean_file = r.get_string("mean_file", "");
  p.crop_size = r.get_int("crop_size", 0);
  p.mirror = r.get_bool("mirror", false);
  p.force_color = r.get_bool("force_color", false);
  p.force_gray = r.get_bool("force_gray", false);
  if (!p.mean_file.empty() && !p.mean_value.empty())
    r.fail("mean_value", "give mean_file or mean_value, not both (Caffe refuses them together too)");
  if (p.force_color && p.force_gray) r.fail("force_gray", "force_color and force_gray cannot both be set");
  if (p.crop_size < 0) r.fail("crop_size", "crop_size must not be negative");
  r.finish();
  return p;
}

void DataTransformer::load_mean_file() {
  if (params_.mean_file.empty()) return;
  const Blob mean = io::read_binaryproto(params_.mean_file);
  if (mean.num_axes() < 3 || mean.count() != mean.count(mean.num_axes() - 3))
    throw Error("transform_param.mean_file '" + params_.mean_file + "' holds a blob of shape " + mean.shape_string() +
                ", not one mean image (C, H, W); make it with `crema compute-mean`");
  mean_shape_ = {mean.shape(-3), mean.shape(-2), mean.shape(-1)};
  mean_.assign(mean.cpu_data(), mean.cpu_data() + mean.count());
}

std::vector<int> DataTransformer::output_shape(int channels, int height, int width) const {
  const auto& mean = params_.mean_value;
  if (!mean.empty() && mean.size() != 1 && static_cast<int>(mean.size()) != channels)
    throw Error("transform_param.mean_value has " + std::to_string(mean.size()) + " values but the data has " +
                std::to_string(channels) + " channels; give one value or one per channel");
  if (!mean_shape_.empty() && mean_shape_ != std::vector<int>{channels, height, width})
    throw Error("transform_param.mean_file '" + params_.mean_file + "' is a " +
                io::shape_text(mean_shape_[0], mean_shape_[1], mean_shape_[2]) + " mean image but the data is " +
                io::shape_text(channels, height, width) + "; compute the mean of this data with `crema compute-mean`");
  const int crop = params_.crop_size;
  if (crop > 0 && (crop > height || crop > width))
    throw Error("transform_param.crop_size " + std::to_string(crop) + " is larger than the " + std::to_string(height) +
                "x" + std::to_string(width) + " input");
  return {channels, crop > 0 ? crop : height, crop > 0 ? crop : width};
}

template <class T>
void DataTransformer::transform(const T* src, int channels, int height, int width, float* dst, Rng& rng) const {
  const int crop = params_.crop_size;
  const int out_h = crop > 0 ? crop : height, out_w = crop > 0 ? crop : width;
  int off_h = 0, off_w = 0;
  if (crop > 0) {
    if (phase_ == Phase::TRAIN) {
      off_h = static_cast<int>(rng.below(static_cast<uint32_t>(height - crop + 1)));
      off_w = static_cast<int>(rng.below(static_cast<uint32_t>(width - crop + 1)));
    } else {
      off_h = (height - crop) / 2;
      off_w = (width - crop) / 2;
    }
  }
  const bool flip = params_.mirror && phase_ == Phase::TRAIN && rng.below(2) == 1;
  const auto& mean = params_.mean_value;
  const float* mean_image = mean_.empty() ? nullptr : mean_.data();  // mean_image: (C, H, W), like src
  for (int c = 0; c < channels; ++c) {
    const float m = mean.empty() ? 0.f : mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
    for (int y = 0; y < out_h; ++y) {
      const size_t in_row = (static_cast<size_t>(c) * height + static_cast<size_t>(y + off_h)) * width + off_w;
      const T* row = src + in_row;
      const float* mean_row = mean_image ? mean_image + in_row : nullptr;
      float* out = dst + (static_cast<size_t>(c) * out_h + static_cast<size_t>(y)) * out_w;
      for (int x = 0; x < out_w; ++x) {
        const int from = flip ? out_w - 1 - x : x;
        const float v = static_cast<float>(row[from]);
        out[x] = (v - (mean_row ? mean_row[from] : m)) * params_.scale;
      }
    }
  }
}

template void DataTransformer::transform<uint8_t>(const uint8_t*, int, int, int, float*, Rng&) const;
template void DataTransformer::transform<float>(const float*, int, int, int, float*, Rng&) const;

}  // namespace crema
