// What the emulated cuBLAS and cuDNN share with the emulated runtime
// (tests/cuda_emu/emu_runtime.cpp): its findings and its map of device memory.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace crema_emu {

// Records a finding: printed to stderr, returned by the next cudaGetLastError and
// spelt out by cudaGetErrorString.
void report(cudaError_t e, const std::string& what);

// Whether [p, p + bytes) lies inside one device allocation; a finding naming `what`
// where it does not.
bool device_data(const void* p, size_t bytes, const std::string& what);

// Keeps OpenBLAS to the calling thread while it lives. The emulation's products are
// many and small, and OpenMP's spinning workers made them ten times slower when two
// tests ran side by side; one device thread's work belongs on one host thread anyway.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int previous_;
};

}  // namespace crema_emu
