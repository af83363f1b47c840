#include "layers/data_transformer.hpp"

#include <cstdint>

#include "engine/error.hpp"

namespace crema {

TransformParams TransformParams::parse(MapReader r) {
  TransformParams p;
  p.scale = r.get_float("scale", 1.f);
  p.mean_value = r.get_floats("mean_value");
  p.crop_size = r.get_int("crop_size", 0);
  p.mirror = r.get_bool("mirror", false);
  if (r.has("mean_file"))
    r.fail("mean_file", "mean_file is not supported by this version of crema yet; use mean_value (one per channel)");
  if (p.crop_size < 0) r.fail("crop_size", "crop_size must not be negative");
  r.allow({"force_color", "force_gray"});  // meaningful for encoded images only
  r.finish();
  return p;
}

std::vector<int> DataTransformer::output_shape(int channels, int height, int width) const {
  const auto& mean = params_.mean_value;
  if (!mean.empty() && mean.size() != 1 && static_cast<int>(mean.size()) != channels)
    throw Error("transform_param.mean_value has " + std::to_string(mean.size()) + " values but the data has " +
                std::to_string(channels) + " channels; give one value or one per channel");
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
  for (int c = 0; c < channels; ++c) {
    const float m = mean.empty() ? 0.f : mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
    for (int y = 0; y < out_h; ++y) {
      const T* row = src + (static_cast<size_t>(c) * height + static_cast<size_t>(y + off_h)) * width + off_w;
      float* out = dst + (static_cast<size_t>(c) * out_h + static_cast<size_t>(y)) * out_w;
      for (int x = 0; x < out_w; ++x) {
        const float v = static_cast<float>(row[flip ? out_w - 1 - x : x]);
        out[x] = (v - m) * params_.scale;
      }
    }
  }
}

template void DataTransformer::transform<uint8_t>(const uint8_t*, int, int, int, float*, Rng&) const;
template void DataTransformer::transform<float>(const float*, int, int, int, float*, Rng&) const;

}  // namespace crema
