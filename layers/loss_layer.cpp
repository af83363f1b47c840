#include "layers/loss_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.hpp"

namespace crema {

LossParams LossParams::parse(MapReader r) {
  LossParams p;
  if (r.has("ignore_label")) p.ignore_label = r.get_int("ignore_label", 0);
  const bool has_normalize = r.has("normalize");
  const bool normalize = r.get_bool("normalize", true);
  if (r.has("normalization"))
    p.normalization =
        static_cast<LossNormalization>(r.get_enum("normalization", {"FULL", "VALID", "BATCH_SIZE", "NONE"}, 1, 0));
  else if (has_normalize)
    p.normalization = normalize ? LossNormalization::VALID : LossNormalization::BATCH_SIZE;
  r.finish();
  return p;
}

float loss_normalizer(LossNormalization mode, int outer, int inner, int valid) {
  float normalizer = 1.f;
  switch (mode) {
    case LossNormalization::FULL: normalizer = static_cast<float>(outer) * static_cast<float>(inner); break;
    case LossNormalization::VALID:
      normalizer = valid < 0 ? static_cast<float>(outer) * static_cast<float>(inner) : static_cast<float>(valid);
      break;
    case LossNormalization::BATCH_SIZE: normalizer = static_cast<float>(outer); break;
    case LossNormalization::NONE: normalizer = 1.f; break;
  }
  return std::max(1.f, normalizer);
}

std::optional<int> read_label(const Layer& layer, float value, int num_classes,
                              const std::optional<int>& ignore_label) {
  auto fail = [&](const std::string& what) {
    std::string message = std::string(layer.type()) + " layer '" + layer.name() + "': label " + what +
                          "; labels must be class indices in [0, " + std::to_string(num_classes) + ")";
    message += ignore_label ? " or the ignore_label " + std::to_string(*ignore_label)
                            : " (set ignore_label to skip a label value)";
    throw BadLabel(message, value);
  };
  // The truncation to int is undefined for NaN and values beyond int's range.
  if (!(std::fabs(value) < 2147483520.f)) fail(fmt::format("{}", value) + " is out of range");
  // Caffe truncates 2.7 to class 2 silently; such labels are regression targets or
  // damaged data, never classes.
  if (value != std::floor(value)) fail(fmt::format("{}", value) + " is not a whole number");
  const int label = static_cast<int>(value);
  if (ignore_label && label == *ignore_label) return std::nullopt;
  if (label < 0 || label >= num_classes) fail(std::to_string(label) + " is out of range");
  return label;
}

int class_axis(const LayerSpec& spec, const BlobVec& bottom, int axis) {
  const Blob& scores = *bottom[0];
  if (axis >= -scores.num_axes() && axis < scores.num_axes()) return scores.canonical_axis(axis);
  std::string message = "the scores, " + spec.bottom_label(0) + " of shape " + scores.shape_string() +
                        ", have no axis " + std::to_string(axis) + " to hold the classes";
  if (bottom.size() > 1 && bottom[1]->num_axes() > scores.num_axes())
    message += "; the bottoms are (scores, labels): are they written the other way round?";
  spec.fail(message);
}

void LossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (bottom[0]->num_axes() == 0 || bottom[1]->num_axes() == 0 || bottom[0]->shape(0) != bottom[1]->shape(0))
    spec_.fail(std::string(type()) + ": the data and label should have the same first dimension; got " +
               bottom[0]->shape_string() + " and " + bottom[1]->shape_string());
  top[0]->reshape({});
}

}  // namespace crema
