#include "engine/filler.hpp"

#include <cmath>

#include "engine/error.hpp"

namespace crema {

namespace {
const std::vector<std::string> kFillerTypes = {"constant", "uniform", "gaussian", "xavier", "msra", "bilinear",
                                               "positive_unitball"};

// Caffe's fan-in/fan-out for a weight of shape (out, in, ...).
float fan_norm(const FillerSpec& spec, const Blob& blob) {
  const float fan_in = static_cast<float>(blob.count()) / static_cast<float>(blob.shape(0));
  const float fan_out = blob.num_axes() > 1 ? static_cast<float>(blob.count()) / static_cast<float>(blob.shape(1))
                                            : static_cast<float>(blob.count());
  switch (spec.variance_norm) {
    case FillerSpec::VarianceNorm::FAN_OUT: return fan_out;
    case FillerSpec::VarianceNorm::AVERAGE: return (fan_in + fan_out) / 2.f;
    case FillerSpec::VarianceNorm::FAN_IN: break;
  }
  return fan_in;
}
}  // namespace

bool is_random_filler(const std::string& type) {
  return type == "uniform" || type == "gaussian" || type == "xavier" || type == "msra" || type == "positive_unitball";
}

FillerSpec FillerSpec::parse(MapReader r, const std::string& default_type) {
  FillerSpec s;
  s.type = default_type;
  if (const Node* t = r.find("type")) s.type = kFillerTypes[static_cast<size_t>(enum_value(*t, kFillerTypes))];
  s.value = r.get_float("value", 0.f);
  s.min = r.get_float("min", 0.f);
  s.max = r.get_float("max", 1.f);
  s.mean = r.get_float("mean", 0.f);
  s.std = r.get_float("std", 1.f);
  s.sparse = r.get_int("sparse", -1);
  s.variance_norm = static_cast<VarianceNorm>(r.get_enum("variance_norm", {"FAN_IN", "FAN_OUT", "AVERAGE"}, 0, 0));
  if (s.min > s.max) r.fail("min", "uniform filler needs min <= max");
  if (s.std < 0) r.fail("std", "gaussian filler needs std >= 0");
  r.finish();
  return s;
}

void fill(const FillerSpec& spec, Blob& blob, Rng& rng) {
  const int n = blob.count();
  if (n == 0) return;
  float* w = blob.mutable_cpu_data();  // w: blob.shape()
  if (spec.type == "constant") {
    for (int i = 0; i < n; ++i) w[i] = spec.value;
  } else if (spec.type == "uniform") {
    for (int i = 0; i < n; ++i) w[i] = rng.uniform(spec.min, spec.max);
  } else if (spec.type == "gaussian") {
    for (int i = 0; i < n; ++i) w[i] = rng.gaussian(spec.mean, spec.std);
    if (spec.sparse >= 0) {
      // Each output keeps on average `sparse` non-zero inputs.
      if (blob.num_axes() < 1) throw Error("sparse gaussian filler needs a blob with at least one axis");
      const float p = static_cast<float>(spec.sparse) / static_cast<float>(blob.shape(0));
      for (int i = 0; i < n; ++i)
        if (!rng.bernoulli(p)) w[i] = 0.f;
    }
  } else if (spec.type == "xavier") {
    const float scale = std::sqrt(3.f / fan_norm(spec, blob));
    for (int i = 0; i < n; ++i) w[i] = rng.uniform(-scale, scale);
  } else if (spec.type == "msra") {
    const float stddev = std::sqrt(2.f / fan_norm(spec, blob));
    for (int i = 0; i < n; ++i) w[i] = rng.gaussian(0.f, stddev);
  } else if (spec.type == "bilinear") {
    // Upsampling kernel for a Deconvolution weight (C, 1, K, K).
    if (blob.num_axes() != 4 || blob.shape(2) != blob.shape(3))
      throw Error("bilinear filler needs a 4-D blob with square kernels, got " + blob.shape_string());
    const int k = blob.shape(3);
    const float f = std::ceil(static_cast<float>(k) / 2.f);
    const float c = (2.f * f - 1.f - std::fmod(f, 2.f)) / (2.f * f);
    for (int i = 0; i < n; ++i) {
      const float x = static_cast<float>(i % k), y = static_cast<float>((i / k) % k);
      w[i] = (1.f - std::fabs(x / f - c)) * (1.f - std::fabs(y / f - c));
    }
  } else if (spec.type == "positive_unitball") {
    // Each row (one per output) is positive and sums to 1.
    for (int i = 0; i < n; ++i) w[i] = rng.uniform(0.f, 1.f);
    const int rows = blob.shape(0), dim = n / rows;
    for (int r = 0; r < rows; ++r) {
      double sum = 0;
      for (int j = 0; j < dim; ++j) sum += w[r * dim + j];
      for (int j = 0; j < dim; ++j) w[r * dim + j] = static_cast<float>(w[r * dim + j] / sum);
    }
  } else {
    throw Error("unknown filler type '" + spec.type + "'");
  }
}

}  // namespace crema
