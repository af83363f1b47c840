// A caching allocator for device memory, as PyTorch's and cub's: freed blocks stay
// in a free list and are handed out again, so a training loop whose blob sizes do
// not change calls cudaMalloc only during its first iteration. It is plain C++: the
// device calls come in as a Backend, so tests drive it with host memory.
//
// Sizes are rounded up to size classes (multiples of 512 bytes up to 1 MiB, then
// four classes per power of two, so at most 25% is wasted), and a block is reused
// only for a request of its own class.
//
// Blocks are reused in the order of the host calls, without waiting for the device:
// that is safe because all of a device's kernels run on its one stream (CudaContext),
// so a kernel that writes a reused block runs after every kernel that read it before
// it was freed. Work on another stream must synchronise before its memory is freed.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace crema::cuda {

struct DeviceMemoryStats {
  long backend_allocs = 0;  // cudaMalloc calls that succeeded
  long backend_frees = 0;   // cudaFree calls
  long oom_retries = 0;     // times the cache was released to satisfy a request
  size_t in_use = 0;        // bytes handed out and not yet freed (rounded sizes)
  size_t cached = 0;        // bytes in the free lists
  size_t peak_in_use = 0;   // largest in_use so far
};

class CachingAllocator {
 public:
  struct Backend {
    // Returns nullptr when the device is out of memory; throws for any other failure.
    std::function<void*(size_t bytes)> alloc;
    std::function<void(void* p)> free;
    // Optional: what the device itself reports (e.g. "12.0 GiB free of 80.0 GiB"), for the
    // out-of-memory message.
    std::function<std::string()> describe;
    // Blocks of exactly the requested size (a block is reused only for that size) instead
    // of size classes: for a backend that checks each access against its block, which the
    // rounding would loosen (the CUDA emulation of the tests).
    bool exact_sizes = false;
  };

  // `device_name` names the device in errors, e.g. "CUDA device 0".
  CachingAllocator(Backend backend, std::string device_name);
  ~CachingAllocator();  // returns the cached blocks to the backend
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (0 allowed). Throws Error when the device is out of
  // memory even after the cache was released.
  void* allocate(size_t bytes);
  // Puts a block from allocate() back into its free list; nullptr is ignored.
  void deallocate(void* p) noexcept;
  // Returns every cached block to the backend.
  void release_cached();
  DeviceMemoryStats stats() const;

  static size_t size_class(size_t bytes);

 private:
  void release_cached_locked();

  Backend backend_;
  std::string device_name_;
  mutable std::mutex mutex_;  // data workers free blobs from their own threads
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live_;               // block -> its size class
  DeviceMemoryStats stats_;
};

// "1.5 GiB", "512 B": for memory messages.
std::string format_bytes(size_t bytes);

}  // namespace crema::cuda
