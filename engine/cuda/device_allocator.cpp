#include "engine/cuda/device_allocator.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>
#include <utility>

#include "engine/error.hpp"

namespace crema::cuda {

namespace {
constexpr size_t kMinBlock = 512;           // cudaMalloc's own alignment is 256
constexpr size_t kSmallLimit = size_t{1} << 20;  // below this: multiples of kMinBlock
}  // namespace

size_t CachingAllocator::size_class(size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  if (bytes <= kSmallLimit) return (bytes + kMinBlock - 1) / kMinBlock * kMinBlock;
  if (bytes > std::numeric_limits<size_t>::max() / 2) return bytes;  // no device has that: let the backend say so
  // Four classes per power of two: the step is a quarter of the largest power of two
  // not above `bytes`, so the rounding wastes at most 25%.
  size_t top = kSmallLimit;
  while (top <= bytes / 2) top *= 2;
  const size_t step = top / 4;
  return (bytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(Backend backend, std::string device_name)
    : backend_(std::move(backend)), device_name_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() { release_cached_locked(); }

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = backend_.exact_sizes ? std::max<size_t>(bytes, 1) : size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* p = nullptr;
  auto cached = free_.find(size);
  if (cached != free_.end() && !cached->second.empty()) {
    p = cached->second.back();
    cached->second.pop_back();
    stats_.cached -= size;
  } else {
    p = backend_.alloc(size);
    if (!p && stats_.cached > 0) {
      // Blocks of other sizes may be all that stands in the way: give them back and retry once.
      release_cached_locked();
      ++stats_.oom_retries;
      p = backend_.alloc(size);
    }
    if (!p) {
      std::string device = backend_.describe ? " (the device reports " + backend_.describe() + ")" : "";
      throw Error("out of memory on " + device_name_ + ": requested " + format_bytes(bytes) + " (a block of " +
                  format_bytes(size) + ") while crema holds " + format_bytes(stats_.in_use) +
                  " in use and " + format_bytes(stats_.cached) + " cached" + device +
                  "; reduce batch_size in the data layers (or the input shapes), or use a device with more memory");
    }
    ++stats_.backend_allocs;
  }
  live_.emplace(p, size);
  stats_.in_use += size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  return p;
}

void CachingAllocator::deallocate(void* p) noexcept {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = live_.find(p);
  if (it == live_.end()) {
    // Not ours: hand it straight back rather than caching a block of unknown size.
    backend_.free(p);
    ++stats_.backend_frees;
    return;
  }
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use -= size;
  try {
    free_[size].push_back(p);
    stats_.cached += size;
  } catch (...) {  // no host memory for the free list: return the block instead
    backend_.free(p);
    ++stats_.backend_frees;
  }
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      backend_.free(p);
      ++stats_.backend_frees;
    }
  }
  free_.clear();
  stats_.cached = 0;
}

DeviceMemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::string format_bytes(size_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

}  // namespace crema::cuda
