// What Caffe's loss layers share (its LossLayer): two bottoms — predictions and
// targets — with the same first dimension, one scalar loss top that the net weights
// by loss_weight (1 by default), and loss_param's rule for dividing the summed loss.
// Label reading lives here too, since every classification layer (the losses and
// Accuracy) reads labels the same way.
#pragma once

#include <optional>

#include "engine/layer.hpp"

namespace crema {

// Caffe's LossParameter.NormalizationMode, in its enum order.
enum class LossNormalization { FULL, VALID, BATCH_SIZE, NONE };

struct LossParams {
  std::optional<int> ignore_label;
  LossNormalization normalization = LossNormalization::VALID;
  // loss_param; the legacy `normalize` applies only when `normalization` is absent.
  static LossParams parse(MapReader r);
};

// Caffe's LossLayer::GetNormalizer for a loss summed over outer * inner predictions of
// which `valid` were not ignored. Never below 1: a batch whose labels are all ignored
// then gives loss 0 instead of NaN (a multi-task net may switch a loss off that way).
float loss_normalizer(LossNormalization mode, int outer, int inner, int valid);

// Reads one label as Caffe does: a float truncated to int. Returns nullopt for the
// ignore_label. A label outside [0, num_classes) throws an Error naming the layer;
// Caffe only DCHECKs it and reads out of bounds in release builds.
std::optional<int> read_label(const Layer& layer, float value, int num_classes,
                              const std::optional<int>& ignore_label);

// The class axis of a classifier's scores (bottom 0), counted from the end when negative.
// Scores without that axis are most often the labels written first, which the error says.
int class_axis(const LayerSpec& spec, const BlobVec& bottom, int axis);

class LossLayer : public Layer {
 public:
  using Layer::Layer;
  int exact_num_bottom() const override { return 2; }
  int exact_num_top() const override { return 1; }
  bool auto_top_blobs() const override { return true; }
  // The second bottom holds targets (labels), which have no gradient.
  bool allow_force_backward(int bottom_index) const override { return bottom_index != 1; }
  bool is_loss() const override { return true; }
  // Checks that the first dimensions agree and makes top[0] a scalar (zero axes).
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
};

}  // namespace crema
