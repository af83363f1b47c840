// Weight initialisers, Caffe's FillerParameter: constant, uniform, gaussian (with
// optional sparsity), xavier, msra, bilinear and positive_unitball.
#pragma once

#include <string>

#include "engine/blob.hpp"
#include "engine/config.hpp"
#include "engine/rng.hpp"

namespace crema {

struct FillerSpec {
  enum class VarianceNorm { FAN_IN, FAN_OUT, AVERAGE };
  std::string type = "constant";
  float value = 0.f;
  float min = 0.f, max = 1.f;
  float mean = 0.f, std = 1.f;
  int sparse = -1;
  VarianceNorm variance_norm = VarianceNorm::FAN_IN;

  // Reads a filler map (e.g. weight_filler); calls r.finish().
  static FillerSpec parse(MapReader r, const std::string& default_type = "constant");
};

void fill(const FillerSpec& spec, Blob& blob, Rng& rng);

// Whether filler `type` draws its values at random (constant and bilinear do not): a layer
// left at such a filler holds noise until it learns or loads something.
bool is_random_filler(const std::string& type);

}  // namespace crema
