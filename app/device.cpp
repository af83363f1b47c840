#include "app/device.hpp"

#include <cstdio>
#include <iostream>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"

namespace crema::app {

namespace {

void print_device(const cuda::DeviceInfo& d) {
  const auto row = [](const char* key, const std::string& value) {
    std::printf("  %-22s %s\n", key, value.c_str());
  };
  std::printf("Device %d: %s\n", d.id, d.name.c_str());
  row("Compute capability:", std::to_string(d.major) + "." + std::to_string(d.minor));
  row("Total memory:", cuda::format_bytes(d.total_memory));
  row("Free memory:", d.kernels_supported || d.free_memory > 0 ? cuda::format_bytes(d.free_memory) : "unknown");
  row("Multiprocessors:", std::to_string(d.multiprocessors));
  row("Clock:", std::to_string(d.clock_mhz) + " MHz");
  row("Memory clock:", std::to_string(d.memory_clock_mhz) + " MHz, " + std::to_string(d.memory_bus_bits) + "-bit bus");
  row("Runs crema's kernels:", d.kernels);
  // Tensor cores take TF32 from compute capability 8.0 (Ampere) on; before that
  // precision: tf32 computes as fp32.
  row("TF32 tensor cores:", d.major >= 8 ? "yes (precision: tf32 uses them)" : "no (precision: tf32 computes in fp32)");
}

}  // namespace

int device(const DeviceOptions& opt) {
  std::vector<cuda::DeviceInfo> devices;
  try {
    devices = cuda::query_devices(opt.gpu);
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";  // "no usable CUDA device: <reason>"
    return 1;
  }
  std::printf("CUDA driver %s, runtime %s (built with %s), cuDNN %s (built with %s)\n",
              cuda::driver_version().c_str(), cuda::loaded_runtime_version().c_str(),
              cuda::runtime_version().c_str(), cuda::loaded_cudnn_version().c_str(),
              cuda::cudnn_version().c_str());
  std::printf("crema's kernels are built for %s\n", cuda::compiled_architectures().c_str());
  bool any_usable = false;
  for (const auto& d : devices) {
    print_device(d);
    any_usable = any_usable || d.kernels_supported;
  }
  std::fflush(stdout);
  if (!any_usable) {
    std::cerr << "no usable CUDA device: crema's kernels cannot run on "
              << (devices.size() == 1 ? "this device" : "any of these devices") << "\n";
    return 1;
  }
  return 0;
}

}  // namespace crema::app
