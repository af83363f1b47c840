// The GPU paths' label check: labels stay on the device, one kernel finds the first
// one that read_label would refuse, and only that verdict comes back to the host,
// which then throws read_label's own message, so a bad label reads the same on
// both devices. Shared by the layers that read labels on the GPU (Hinge, Infogain,
// and SoftmaxWithLoss and Accuracy once their own kernels have counted a bad one).
#pragma once

#ifdef CREMA_WITH_CUDA
#include <optional>
#include <string>

#include "engine/error.hpp"
#include "layers/cuda/catalog_kernels.hpp"
#include "layers/loss_layer.hpp"

namespace crema {

// Throws read_label's Error for the first label of `labels` (device memory, n
// values) that is not a class in [0, num_classes) nor ignore_label. Waits for the
// stream. scratch: (2) device floats.
inline void check_labels_gpu(const Layer& layer, const cuda::CudaContext& ctx, int n, const float* labels,
                             int num_classes, const std::optional<int>& ignore_label, float* scratch) {
  cuda::TargetRule rule;
  rule.has_ignore = ignore_label.has_value();
  rule.ignore_label = ignore_label.value_or(0);
  const cuda::BadIndex bad = cuda::find_bad_label(ctx, n, labels, num_classes, rule, scratch);
  if (bad.position < 0) return;
  read_label(layer, bad.value, num_classes, ignore_label);  // throws the CPU's message
  throw Error(std::string(layer.type()) + " layer '" + layer.name() + "': a label is out of range");
}

}  // namespace crema
#endif
