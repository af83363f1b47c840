// What the emulated cuDNN shares with the emulated runtime (tests/cuda_emu/emu_runtime.cpp):
// its findings, its map of device memory and its stream queues.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <string>

namespace crema_emu {

// Records a finding: printed to stderr, returned by the next cudaGetLastError and
// spelt out by cudaGetErrorString.
void report(cudaError_t e, const std::string& what);

// Whether [p, p + bytes) lies inside one device allocation; a finding naming `what`
// where it does not.
bool device_data(const void* p, size_t bytes, const std::string& what);

// Queues `work` on `stream`, to run in order with the stream's kernels and copies when
// the host waits for them; and waits for (runs) everything queued on `stream`.
void enqueue(cudaStream_t stream, std::function<void()> work);
void wait_for(cudaStream_t stream);

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
