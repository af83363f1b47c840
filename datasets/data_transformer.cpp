#include "datasets/data_transformer.hpp"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <tuple>
#include <type_traits>
#include <utility>

#include "engine/error.hpp"
#include "io/caffe_binary.hpp"
#include "io/datum.hpp"

namespace crema {

namespace {

// A [min, max] pair from a two-value key, or the defaults when the key is absent.
std::pair<float, float> parse_range(MapReader& r, const std::string& key, std::pair<float, float> def) {
  const std::vector<float> v = r.get_floats(key);
  if (v.empty()) return def;
  if (v.size() != 2 || v[0] > v[1]) r.fail(key, "give two values [min, max] with min <= max");
  return {v[0], v[1]};
}

TransformParams::RandomResizedCrop parse_random_resized_crop(MapReader r) {
  TransformParams::RandomResizedCrop c;
  c.size = r.required("size").as_int();
  if (c.size <= 0) r.fail("size", "size must be a positive number of pixels (the square output's side)");
  std::tie(c.scale_min, c.scale_max) = parse_range(r, "scale", {c.scale_min, c.scale_max});
  if (c.scale_min <= 0 || c.scale_max > 1)
    r.fail("scale", "scale is a fraction of the image's area: give 0 < min <= max <= 1, e.g. [0.08, 1]");
  std::tie(c.ratio_min, c.ratio_max) = parse_range(r, "ratio", {c.ratio_min, c.ratio_max});
  if (c.ratio_min <= 0) r.fail("ratio", "ratio is width / height: give 0 < min <= max, e.g. [0.75, 1.3333]");
  r.finish();
  return c;
}

TransformParams::ColorJitter parse_color_jitter(MapReader r) {
  TransformParams::ColorJitter j;
  const auto read = [&](const std::string& key, float& value) {
    value = r.get_float(key, 0.f);
    if (!(value >= 0))
      r.fail(key, key + " must be >= 0: its factor is drawn from [max(0, 1 - " + key + "), 1 + " + key +
                      "]; 0 turns it off");
  };
  read("brightness", j.brightness);
  read("contrast", j.contrast);
  read("saturation", j.saturation);
  r.finish();
  return j;
}

// torchvision's Resize(n): the shorter side becomes n, the longer n * long / short
// rounded down. Returns (height, width).
std::pair<int, int> shorter_side_to(int height, int width, int n) {
  if (height <= width) return {n, static_cast<int>(static_cast<long long>(width) * n / height)};
  return {static_cast<int>(static_cast<long long>(height) * n / width), n};
}

// Bilinear resize (cv::resize, INTER_LINEAR) of `window` of every plane to out_h x
// out_w, in float whatever the input type. image: (C, H, W); returns (C, out_h, out_w).
template <class T>
std::vector<float> resize_planes(const T* image, int channels, int height, int width, int top, int left, int rows,
                                 int cols, int out_h, int out_w) {
  constexpr int type = std::is_same_v<T, float> ? CV_32F : CV_8U;
  const size_t in_plane = static_cast<size_t>(height) * width, out_plane = static_cast<size_t>(out_h) * out_w;
  std::vector<float> out(out_plane * channels);
  for (int c = 0; c < channels; ++c) {
    const cv::Mat plane(height, width, type, const_cast<T*>(image + c * in_plane));
    cv::Mat region;
    plane(cv::Rect(left, top, cols, rows)).convertTo(region, CV_32F);
    cv::Mat resized(out_h, out_w, CV_32F, out.data() + c * out_plane);
    cv::resize(region, resized, resized.size(), 0, 0, cv::INTER_LINEAR);
  }
  return out;
}

float clamp255(float v) { return std::clamp(v, 0.f, 255.f); }

// Caffe's channel order is BGR. bgr: (3, H, W); i: the pixel.
float grey_at(const float* bgr, size_t plane, size_t i) {
  return 0.114f * bgr[i] + 0.587f * bgr[plane + i] + 0.299f * bgr[2 * plane + i];
}

// image: (C, H, W) with plane = H * W.
float mean_grey(const float* image, int channels, size_t plane) {
  double sum = 0;
  if (channels == 3) {
    for (size_t i = 0; i < plane; ++i) sum += grey_at(image, plane, i);
    return static_cast<float>(sum / static_cast<double>(plane));
  }
  const size_t count = plane * channels;
  for (size_t i = 0; i < count; ++i) sum += image[i];
  return static_cast<float>(sum / static_cast<double>(count));
}

}  // namespace

TransformParams TransformParams::parse(MapReader r) {
  TransformParams p;
  p.scale = r.get_float("scale", 1.f);
  if (p.scale == 0.f || !std::isfinite(p.scale))
    r.fail("scale",
           "scale must be a finite non-zero number (0 makes every input 0); 1/255 = 0.00390625 maps bytes "
           "to [0, 1]");
  p.mean_value = r.get_floats("mean_value");
  p.mean_file = r.get_string("mean_file", "");
  p.std_dev = r.get_floats("std");
  p.crop_size = r.get_int("crop_size", 0);
  p.mirror = r.get_bool("mirror", false);
  p.force_color = r.get_bool("force_color", false);
  p.force_gray = r.get_bool("force_gray", false);
  p.resize = r.get_int("resize", 0);
  if (r.has("random_resized_crop")) p.random_resized_crop = parse_random_resized_crop(r.sub("random_resized_crop"));
  p.color_jitter = parse_color_jitter(r.sub("color_jitter"));
  if (!p.mean_file.empty() && !p.mean_value.empty())
    r.fail("mean_value", "give mean_file or mean_value, not both (Caffe refuses them together too)");
  if (p.force_color && p.force_gray) r.fail("force_gray", "force_color and force_gray cannot both be set");
  if (p.crop_size < 0) r.fail("crop_size", "crop_size must not be negative");
  if (p.resize < 0) r.fail("resize", "resize is the shorter side in pixels: give a positive number, or leave it out");
  for (float s : p.std_dev)
    if (!(s > 0)) r.fail("std", "every std value must be > 0 (the output is divided by it)");
  if (p.random_resized_crop.size > 0 && p.crop_size > 0)
    r.fail("random_resized_crop", "random_resized_crop cannot be combined with crop_size: it crops already; "
                                  "remove crop_size");
  if (p.random_resized_crop.size > 0 && !p.mean_file.empty())
    r.fail("mean_file", "random_resized_crop cannot be combined with mean_file (the crop is resized, so no pixel "
                        "of the mean image matches); use mean_value");
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

void DataTransformer::check_channels(int channels) const {
  const auto check = [&](const std::vector<float>& values, const std::string& key) {
    if (!values.empty() && values.size() != 1 && static_cast<int>(values.size()) != channels)
      throw Error("transform_param." + key + " has " + std::to_string(values.size()) + " values but the data has " +
                  std::to_string(channels) + (channels == 1 ? " channel" : " channels") +
                  "; give one value or one per channel");
  };
  check(params_.mean_value, "mean_value");
  check(params_.std_dev, "std");
}

bool DataTransformer::crop_too_large(int height, int width) const {
  if (params_.resize > 0) std::tie(height, width) = shorter_side_to(height, width, params_.resize);
  const int crop = params_.crop_size;
  return params_.random_resized_crop.size == 0 && crop > 0 && (crop > height || crop > width);
}

std::vector<int> DataTransformer::output_shape(int channels, int height, int width) const {
  check_channels(channels);
  const bool under_crop = crop_too_large(height, width);
  const int resize = params_.resize;
  if (resize > 0) std::tie(height, width) = shorter_side_to(height, width, resize);
  const std::string resized = resize > 0 ? " after resize: " + std::to_string(resize) : "";
  if (!mean_shape_.empty() && mean_shape_ != std::vector<int>{channels, height, width})
    throw Error("transform_param.mean_file '" + params_.mean_file + "' is a " +
                io::shape_text(mean_shape_[0], mean_shape_[1], mean_shape_[2]) + " mean image but the data is " +
                io::shape_text(channels, height, width) + resized +
                "; compute the mean of this data with `crema compute-mean`");
  if (const int size = params_.random_resized_crop.size; size > 0) return {channels, size, size};
  const int crop = params_.crop_size;
  if (under_crop)
    throw Error("transform_param.crop_size " + std::to_string(crop) + " is larger than the " + std::to_string(height) +
                "x" + std::to_string(width) + " input" + resized);
  return {channels, crop > 0 ? crop : height, crop > 0 ? crop : width};
}

float DataTransformer::mean_of(int c) const {
  const auto& mean = params_.mean_value;
  return mean.empty() ? 0.f : mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
}

float DataTransformer::std_of(int c) const {
  const auto& s = params_.std_dev;
  return s.empty() ? 1.f : s[s.size() == 1 ? 0 : static_cast<size_t>(c)];
}

// torchvision's RandomResizedCrop.get_params: up to 10 tries at a window of a random
// area fraction and log-uniform aspect ratio that fits, else the centre of the image
// clamped to the ratio range. Sides are rounded to the nearest pixel.
DataTransformer::Window DataTransformer::random_resized_window(int height, int width, Rng& rng) const {
  const auto& p = params_.random_resized_crop;
  const double area = static_cast<double>(height) * width;
  const float log_min = std::log(p.ratio_min), log_max = std::log(p.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(p.scale_min, p.scale_max);
    const double ratio = std::exp(static_cast<double>(rng.uniform(log_min, log_max)));
    const int w = static_cast<int>(std::lround(std::sqrt(target_area * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target_area / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = static_cast<int>(rng.below(static_cast<uint32_t>(height - h + 1)));
      const int left = static_cast<int>(rng.below(static_cast<uint32_t>(width - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < p.ratio_min)
    h = std::clamp(static_cast<int>(std::lround(w / static_cast<double>(p.ratio_min))), 1, height);
  else if (in_ratio > p.ratio_max)
    w = std::clamp(static_cast<int>(std::lround(h * static_cast<double>(p.ratio_max))), 1, width);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

template <class T>
void DataTransformer::transform(const T* src, int channels, int height, int width, float* dst, Rng& rng) const {
  if (params_.resize <= 0) return crop_and_finish(src, channels, height, width, dst, rng);
  const auto [h, w] = shorter_side_to(height, width, params_.resize);
  const std::vector<float> resized = resize_planes(src, channels, height, width, 0, 0, height, width, h, w);
  crop_and_finish(resized.data(), channels, h, w, dst, rng);
}

// image: (C, H, W), the input after resize.
template <class T>
void DataTransformer::crop_and_finish(const T* image, int channels, int height, int width, float* dst,
                                      Rng& rng) const {
  const bool train = phase_ == Phase::TRAIN;
  if (const int size = params_.random_resized_crop.size; size > 0) {
    if (train) {
      const Window from = random_resized_window(height, width, rng);
      const std::vector<float> crop =
          resize_planes(image, channels, height, width, from.top, from.left, from.height, from.width, size, size);
      return finish(crop.data(), channels, size, size, {0, 0, size, size}, dst, rng);
    }
    const auto [h, w] = shorter_side_to(height, width, size);
    const std::vector<float> resized = resize_planes(image, channels, height, width, 0, 0, height, width, h, w);
    return finish(resized.data(), channels, h, w, {(h - size) / 2, (w - size) / 2, size, size}, dst, rng);
  }
  const int crop = params_.crop_size;
  Window window{0, 0, height, width};
  if (crop > 0) {
    window.height = window.width = crop;
    if (train) {
      window.top = static_cast<int>(rng.below(static_cast<uint32_t>(height - crop + 1)));
      window.left = static_cast<int>(rng.below(static_cast<uint32_t>(width - crop + 1)));
    } else {
      window.top = (height - crop) / 2;
      window.left = (width - crop) / 2;
    }
  }
  finish(image, channels, height, width, window, dst, rng);
}

// Mirror, colour jitter and normalisation of `window` of image. image: (C, H, W);
// the mean image, if any, is (C, H, W) too; dst: (C, window.height, window.width).
template <class T>
void DataTransformer::finish(const T* image, int channels, int height, int width, Window window, float* dst,
                             Rng& rng) const {
  const bool train = phase_ == Phase::TRAIN;
  const bool flip = params_.mirror && train && rng.below(2) == 1;
  const int out_h = window.height, out_w = window.width;
  const auto in_offset = [&](int c, int y) {
    return (static_cast<size_t>(c) * height + static_cast<size_t>(y + window.top)) * width + window.left;
  };
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < out_h; ++y) {
      const T* row = image + in_offset(c, y);
      float* out = dst + (static_cast<size_t>(c) * out_h + static_cast<size_t>(y)) * out_w;
      for (int x = 0; x < out_w; ++x) out[x] = static_cast<float>(row[flip ? out_w - 1 - x : x]);
    }
  if (train && params_.color_jitter.enabled()) jitter(dst, channels, out_h, out_w, rng);
  // mean_image: (C, H, W), like image
  const float* mean_image = mean_.empty() || mean_image_left_in_ ? nullptr : mean_.data();
  for (int c = 0; c < channels; ++c) {
    const float m = mean_of(c), s = std_of(c);
    for (int y = 0; y < out_h; ++y) {
      const float* mean_row = mean_image ? mean_image + in_offset(c, y) : nullptr;
      float* out = dst + (static_cast<size_t>(c) * out_h + static_cast<size_t>(y)) * out_w;
      for (int x = 0; x < out_w; ++x)
        out[x] = (out[x] - (mean_row ? mean_row[flip ? out_w - 1 - x : x] : m)) * params_.scale / s;
    }
  }
}

// image: (C, H, W), values 0..255, changed in place.
void DataTransformer::jitter(float* image, int channels, int height, int width, Rng& rng) const {
  const auto& j = params_.color_jitter;
  const size_t plane = static_cast<size_t>(height) * width, count = plane * channels;
  const auto factor = [&](float amount) { return rng.uniform(std::max(0.f, 1.f - amount), 1.f + amount); };
  if (j.brightness > 0) {
    const float f = factor(j.brightness);
    for (size_t i = 0; i < count; ++i) image[i] = clamp255(image[i] * f);
  }
  if (j.contrast > 0) {
    const float f = factor(j.contrast), m = mean_grey(image, channels, plane);
    for (size_t i = 0; i < count; ++i) image[i] = clamp255((image[i] - m) * f + m);
  }
  if (j.saturation > 0) {
    const float f = factor(j.saturation);
    if (channels == 3)
      for (size_t i = 0; i < plane; ++i) {
        const float g = grey_at(image, plane, i);
        for (int c = 0; c < 3; ++c) image[c * plane + i] = clamp255(g + (image[c * plane + i] - g) * f);
      }
  }
}

void DataTransformer::to_pixels(const float* sample, int channels, int height, int width, uint8_t* out) const {
  check_channels(channels);
  if (!mean_.empty() && !mean_image_left_in_)
    throw Error("transform_param.mean_file: to_pixels needs the mean image left in (leave_mean_image_in)");
  const size_t plane = static_cast<size_t>(height) * width;
  for (int c = 0; c < channels; ++c) {
    const float m = mean_of(c);
    const float s = std_of(c);
    for (size_t i = 0; i < plane; ++i) {
      const float v = std::round(sample[c * plane + i] * s / params_.scale + m);
      out[c * plane + i] = v >= 255.f ? 255 : v > 0.f ? static_cast<uint8_t>(v) : 0;  // NaN becomes 0
    }
  }
}

template void DataTransformer::transform<uint8_t>(const uint8_t*, int, int, int, float*, Rng&) const;
template void DataTransformer::transform<float>(const float*, int, int, int, float*, Rng&) const;

}  // namespace crema
