// Caffe's transform_param for the data layers, with torchvision-style augmentation.
// One sample goes through these steps, each only when its key is set:
//   1. resize: N — bilinear resize (cv::resize, INTER_LINEAR, per plane, in float) so
//      the shorter side is N and the longer one N * long / short, rounded down
//      (torchvision's Resize(N)). TRAIN and TEST.
//   2. crop: crop_size — Caffe's square crop, random in TRAIN, centre in TEST (offset
//      (H - crop) / 2 rounded down); or random_resized_crop: {size: S, scale, ratio} —
//      TRAIN: torchvision's RandomResizedCrop window, resized to S x S bilinear;
//      TEST: resize the shorter side to S, then the centre S x S.
//   3. mirror — left-right flip with probability 1/2, TRAIN only.
//   4. color_jitter — TRAIN only, on 0..255 values, in this fixed order, each factor
//      f ~ U[max(0, 1 - a), 1 + a) and every value clamped to [0, 255] after each step:
//        brightness  v = v * f
//        contrast    v = (v - m) * f + m, m the image's mean grey level
//        saturation  v = g + (v - g) * f, g = 0.114 B + 0.587 G + 0.299 R of the pixel
//                    (3-channel BGR images only; others are left as they are).
//      The grey level is 0.114 B + 0.587 G + 0.299 R for 3 channels, else the value.
//   5. out[c][y][x] = (v - mean) * scale / std[c]
//      where mean is mean_value[c] or, with mean_file, the mean image at the input
//      pixel the output came from (after resize, before the crop, as in Caffe), and
//      std[c] is 1 without `std`. Without resize the mean image has the input's size.
// To get torchvision's ToTensor + Normalize(m, s) set scale: 0.00392156862 (1/255),
// mean_value: [255 * m] and std: [s], per channel in the data's order (BGR).
// Random numbers come from the Rng passed to transform(), in this order: the crop
// (crop_size: row then column offset; random_resized_crop: per attempt the area
// fraction, the log aspect ratio and, when the window fits, its row then column),
// then the mirror bit, then one factor for each enabled colour_jitter entry in the
// order above (a saturation factor is drawn for grey images too). So one seed gives
// one result, and without the new keys the draws and values are Caffe's.
// force_color / force_gray choose how encoded (JPEG/PNG) records are decoded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/layer_spec.hpp"
#include "engine/rng.hpp"

namespace crema {

struct TransformParams {
  float scale = 1.f;
  std::vector<float> mean_value;
  std::string mean_file;  // Caffe's .binaryproto mean image
  std::vector<float> std_dev;  // the `std` key: 1 value or one per channel, each > 0
  int crop_size = 0;
  bool mirror = false;
  bool force_color = false, force_gray = false;
  int resize = 0;  // shorter side; 0 = keep the size
  struct RandomResizedCrop {
    int size = 0;  // 0 = off
    float scale_min = 0.08f, scale_max = 1.f;      // fraction of the image's area
    float ratio_min = 3.f / 4, ratio_max = 4.f / 3;  // width / height
  } random_resized_crop;
  struct ColorJitter {
    float brightness = 0, contrast = 0, saturation = 0;  // 0 = off
    bool enabled() const { return brightness > 0 || contrast > 0 || saturation > 0; }
  } color_jitter;
  static TransformParams parse(MapReader r);
};

class DataTransformer {
 public:
  DataTransformer(TransformParams params, Phase phase) : params_(std::move(params)), phase_(phase) {}
  const TransformParams& params() const { return params_; }
  // Reads mean_file, if any; throws Error naming it when it cannot be read.
  void load_mean_file();
  // Shape of one transformed sample (C, H', W') for an input of (C, H, W), after
  // resize and crop; with resize and no crop it follows the input's aspect ratio.
  // Checks that mean_value and std have 1 or C values, that the mean image is the
  // (resized) input's size and that the crop fits. Throws Error saying what to change.
  std::vector<int> output_shape(int channels, int height, int width) const;
  // Whether crop_size is larger than an input of height x width (after resize).
  bool crop_too_large(int height, int width) const;
  // Whether the output's size follows the input's (no crop, no mean image of one size):
  // then a batch of one image may have any size.
  bool output_follows_input() const {
    return params_.crop_size == 0 && params_.random_resized_crop.size == 0 && params_.mean_file.empty();
  }
  // Channels to decode an encoded image with: 1 (force_gray), 3 (force_color) or 0
  // (as stored).
  int decode_channels() const { return params_.force_gray ? 1 : params_.force_color ? 3 : 0; }
  bool forces_channels() const { return params_.force_gray || params_.force_color; }
  // src: (C, H, W); dst: output_shape(C, H, W). Const and free of shared scratch
  // space, so worker threads may call it at once, each with its own Rng.
  template <class T>
  void transform(const T* src, int channels, int height, int width, float* dst, Rng& rng) const;
  // For display (crema preview): the mean image of mean_file is no longer subtracted, so
  // that to_pixels gives every pixel back. The mean subtracted from an output pixel is
  // the mean image's at the input pixel it came from, which crop and mirror choose at
  // random: it cannot be added back afterwards. Call before any transform.
  void leave_mean_image_in() { mean_image_left_in_ = true; }
  // Undoes step 5 for display: v = sample * std[c] / scale + mean_value[c], rounded and
  // clamped to 0..255. With mean_file, only after leave_mean_image_in().
  // sample, out: (C, H, W).
  void to_pixels(const float* sample, int channels, int height, int width, uint8_t* out) const;

 private:
  struct Window {
    int top, left, height, width;
  };
  void check_channels(int channels) const;
  float mean_of(int c) const;
  float std_of(int c) const;
  Window random_resized_window(int height, int width, Rng& rng) const;
  template <class T>
  void crop_and_finish(const T* image, int channels, int height, int width, float* dst, Rng& rng) const;
  template <class T>
  void finish(const T* image, int channels, int height, int width, Window window, float* dst, Rng& rng) const;
  void jitter(float* image, int channels, int height, int width, Rng& rng) const;

  TransformParams params_;
  Phase phase_;
  std::vector<int> mean_shape_;          // (C, H, W) of the mean image
  std::vector<float> mean_;              // mean_shape_
  bool mean_image_left_in_ = false;
};

}  // namespace crema
