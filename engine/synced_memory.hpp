// One buffer mirrored on the host and (with CUDA) a device, copied lazily as in
// Caffe's SyncedMemory: whichever side was last written is the head, and the other
// side is refreshed only when it is read. Transfers are counted so that tests can
// prove a GPU training step moves no data across the bus.
#pragma once

#include <atomic>
#include <cstddef>

namespace crema {

class SyncedMemory {
 public:
  enum class Head { Uninitialized, AtCpu, AtGpu, Synced };

  SyncedMemory() = default;
  explicit SyncedMemory(size_t bytes) : size_(bytes) {}
  ~SyncedMemory();
  SyncedMemory(const SyncedMemory&) = delete;
  SyncedMemory& operator=(const SyncedMemory&) = delete;

  const void* cpu_data();
  void* mutable_cpu_data();
  const void* gpu_data();
  void* mutable_gpu_data();
  size_t size() const { return size_; }
  Head head() const { return head_; }

  static long host_to_device_copies() { return h2d_.load(); }
  static long device_to_host_copies() { return d2h_.load(); }

 private:
  void to_cpu();
  void to_gpu();

  size_t size_ = 0;
  void* cpu_ = nullptr;
  void* gpu_ = nullptr;
  int gpu_device_ = -1;
  Head head_ = Head::Uninitialized;
  static std::atomic<long> h2d_, d2h_;
};

}  // namespace crema
