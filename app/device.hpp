// `crema device`: what Caffe's device_query prints, for every CUDA device or one.
#pragma once

namespace crema::app {

struct DeviceOptions {
  int gpu = -1;  // -1: every device
};
// 0 when at least one listed device can run crema's kernels; 1 otherwise, or when
// there is no usable device (one line on stderr says why).
int device(const DeviceOptions& opt);

}  // namespace crema::app
