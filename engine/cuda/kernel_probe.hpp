// Whether this build's kernels can run on a device (for `crema device`). Defined in
// kernel_probe.cu, so only CUDA builds have it.
#pragma once

#include <string>

namespace crema::cuda {

// On the current device, whose compute capability is major.minor: true when crema's
// kernels load there, with *how saying from which image ("yes (sm_90 binary)"); false
// with *how saying why not ("no: ...").
bool probe_kernel_image(int major, int minor, std::string* how);

}  // namespace crema::cuda
