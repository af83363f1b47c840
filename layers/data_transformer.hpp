// Caffe's transform_param for the data layers: optional crop (random in TRAIN,
// centre in TEST), mirror (TRAIN only, random), mean subtraction and scale:
//   out[c][y][x] = (in[c][y + off_h][x' + off_w] - mean) * scale
// where x' = crop_w - 1 - x when mirrored, else x, and mean is mean_value[c] or,
// with mean_file, the mean image at the same input pixel (c, y + off_h, x' + off_w):
// the mean image has the input's size, not the crop's, as in Caffe.
// force_color / force_gray choose how encoded (JPEG/PNG) records are decoded.
#pragma once

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
  int crop_size = 0;
  bool mirror = false;
  bool force_color = false, force_gray = false;
  static TransformParams parse(MapReader r);
};

class DataTransformer {
 public:
  DataTransformer(TransformParams params, Phase phase) : params_(std::move(params)), phase_(phase) {}
  // Reads mean_file, if any; throws Error naming it when it cannot be read.
  void load_mean_file();
  // Shape of one transformed sample (C, H', W') for an input of (C, H, W); checks
  // that mean_value has 1 or C values, that the mean image is (C, H, W) and that the
  // crop fits. Throws Error saying what to change.
  std::vector<int> output_shape(int channels, int height, int width) const;
  // Channels to decode an encoded image with: 1 (force_gray), 3 (force_color) or 0
  // (as stored).
  int decode_channels() const { return params_.force_gray ? 1 : params_.force_color ? 3 : 0; }
  bool forces_channels() const { return params_.force_gray || params_.force_color; }
  // src: (C, H, W); dst: output_shape(C, H, W).
  template <class T>
  void transform(const T* src, int channels, int height, int width, float* dst, Rng& rng) const;

 private:
  TransformParams params_;
  Phase phase_;
  std::vector<int> mean_shape_;  // (C, H, W) of the mean image
  std::vector<float> mean_;      // mean_shape_
};

}  // namespace crema
