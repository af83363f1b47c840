// What the emulated cuDNN shares with the emulated runtime (tests/cuda_emu/emu_runtime.cpp):
// its findings, its map of device memory and its stream queues.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace crema_emu {

// Records a finding of cuBLAS or cuDNN: printed to stderr and kept for their error
// strings (latest_finding), but not the runtime's error.
void report(const std::string& what);
std::string latest_finding();

// Whether [p, p + bytes) lies inside one device allocation; a finding (reported as
// above) naming `what` where it does not.
bool device_data(const void* p, size_t bytes, const std::string& what);

// Clears the device's sticky error (a finding inside queued work), which otherwise
// every later call reports: for tests that make such a mistake on purpose.
void clear_device_error();

// Queues `work` on `stream`, to run in order with the stream's kernels and copies when
// the host waits for them; and waits for (runs) everything queued on `stream`.
void enqueue(cudaStream_t stream, std::function<void()> work);
void wait_for(cudaStream_t stream);

// x rounded to TF32 (8-bit exponent, 10-bit mantissa; to nearest, ties to even), as
// tensor cores take FP32 inputs when TF32 is allowed; and n floats so rounded.
float to_tf32(float x);
std::vector<float> to_tf32(const float* x, size_t n);

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
