// Caffe's transform_param for the data layers: optional crop (random in TRAIN,
// centre in TEST), mirror (TRAIN only, random), mean_value subtraction and scale:
//   out = (in - mean[c]) * scale
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
  int crop_size = 0;
  bool mirror = false;
  static TransformParams parse(MapReader r);
};

class DataTransformer {
 public:
  DataTransformer(TransformParams params, Phase phase) : params_(std::move(params)), phase_(phase) {}
  // Shape of one transformed sample (C, H', W') for an input of (C, H, W); checks
  // that mean_value has 1 or C values and the crop fits.
  std::vector<int> output_shape(int channels, int height, int width) const;
  // src: (C, H, W); dst: output_shape(C, H, W).
  template <class T>
  void transform(const T* src, int channels, int height, int width, float* dst, Rng& rng) const;

 private:
  TransformParams params_;
  Phase phase_;
};

}  // namespace crema
