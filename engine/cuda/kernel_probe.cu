#include <cuda_runtime.h>

#include <string>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/cuda/kernel_probe.hpp"

namespace crema::cuda {

namespace {

__global__ void probe_kernel() {}

// nvcc lists the architectures it compiles for (e.g. 800,900) in host code too.
constexpr int kArchitectures[] = {__CUDA_ARCH_LIST__};

std::string sm(int arch) { return "sm_" + std::to_string(arch / 10); }

}  // namespace

std::string compiled_architectures() {
  std::string s;
  for (const int arch : kArchitectures) s += (s.empty() ? "" : ", ") + sm(arch);
  return s;
}

bool probe_kernel_image(int major, int minor, std::string* how) {
  cudaFuncAttributes attr{};
  const cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it, so that later calls report their own errors
    *how = std::string("no: ") + cudaGetErrorString(e) + "; crema was built for " + compiled_architectures() +
           ", rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(major * 10 + minor);
    return false;
  }
  // A binary image runs on devices of its major version with an equal or higher minor;
  // otherwise the driver compiled the newest PTX not above the device.
  const int device_arch = major * 100 + minor * 10;
  for (const int arch : kArchitectures)
    if (arch / 100 == major && arch <= device_arch) {
      *how = "yes (" + sm(attr.binaryVersion * 10) + " binary)";
      return true;
    }
  *how = "yes (PTX " + std::to_string(attr.ptxVersion / 10) + "." + std::to_string(attr.ptxVersion % 10) +
         ", compiled by the driver when loaded)";
  return true;
}

}  // namespace crema::cuda
