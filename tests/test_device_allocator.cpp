// The caching device allocator, driven by a fake backend (host memory with a capacity
// and counters) so that it is tested without a GPU; one GPU test checks that blobs
// reuse device memory.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include "engine/blob.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/cuda/device_allocator.hpp"
#include "engine/error.hpp"
#include "gpu_test_util.hpp"

using namespace crema;
using cuda::CachingAllocator;

namespace {

// Host memory standing in for a device of `capacity` bytes.
struct FakeDevice {
  size_t capacity;
  size_t used = 0;
  int allocs = 0, frees = 0, failed = 0;
  std::vector<std::pair<void*, size_t>> blocks;

  explicit FakeDevice(size_t cap) : capacity(cap) {}
  CachingAllocator::Backend backend() {
    CachingAllocator::Backend b;
    b.alloc = [this](size_t bytes) -> void* {
      if (used + bytes > capacity) {
        ++failed;
        return nullptr;
      }
      void* p = std::malloc(bytes);
      used += bytes;
      ++allocs;
      blocks.emplace_back(p, bytes);
      return p;
    };
    b.free = [this](void* p) {
      for (auto it = blocks.begin(); it != blocks.end(); ++it)
        if (it->first == p) {
          used -= it->second;
          blocks.erase(it);
          break;
        }
      std::free(p);
      ++frees;
    };
    b.describe = [this] { return std::to_string(capacity - used) + " B free"; };
    return b;
  }
};

}  // namespace

TEST_CASE("device allocator: sizes round up to 512 bytes, then to four classes per power of two") {
  CHECK(CachingAllocator::size_class(0) == 512);
  CHECK(CachingAllocator::size_class(1) == 512);
  CHECK(CachingAllocator::size_class(512) == 512);
  CHECK(CachingAllocator::size_class(513) == 1024);
  CHECK(CachingAllocator::size_class(1000 * 1000) == 1000448);  // 1954 * 512
  CHECK(CachingAllocator::size_class(size_t{1} << 20) == size_t{1} << 20);
  CHECK(CachingAllocator::size_class((size_t{1} << 20) + 1) == (size_t{5} << 18));  // 1.25 MiB
  CHECK(CachingAllocator::size_class(size_t{3} << 29) == size_t{3} << 29);          // 1.5 GiB is a class
  CHECK(CachingAllocator::size_class((size_t{3} << 29) + 1) == size_t{7} << 28);    // next: 1.75 GiB
  // Past 1 MiB no class wastes more than a quarter.
  for (size_t bytes = (size_t{1} << 20) + 1; bytes < (size_t{1} << 34); bytes = bytes * 13 / 10 + 7) {
    const size_t c = CachingAllocator::size_class(bytes);
    CHECK(c >= bytes);
    CHECK(c - bytes <= bytes / 4);
  }
}

TEST_CASE("device allocator: a freed block is reused for a request of its class") {
  FakeDevice dev(1 << 20);
  CachingAllocator a(dev.backend(), "fake device");
  void* p = a.allocate(700);
  CHECK(a.stats().in_use == 1024);
  a.deallocate(p);
  CHECK(a.stats().in_use == 0);
  CHECK(a.stats().cached == 1024);
  CHECK(a.allocate(900) == p);  // 700 and 900 share the 1024-byte class
  CHECK(dev.allocs == 1);
  CHECK(a.stats().cached == 0);
  void* q = a.allocate(2048);  // another class: a new block
  CHECK(q != p);
  CHECK(dev.allocs == 2);
  a.deallocate(p);
  a.deallocate(q);
  a.deallocate(nullptr);
  CHECK(a.stats().cached == 3072);
  a.release_cached();
  CHECK(dev.frees == 2);
  CHECK(dev.used == 0);
  CHECK(a.stats().cached == 0);
}

TEST_CASE("device allocator: with exact sizes a block is the request's size and reused only for that size") {
  FakeDevice dev(1 << 20);
  auto backend = dev.backend();
  backend.exact_sizes = true;
  CachingAllocator a(backend, "fake device");
  void* p = a.allocate(700);
  REQUIRE(dev.blocks.size() == 1);
  CHECK(dev.blocks[0].second == 700);
  CHECK(a.stats().in_use == 700);
  a.deallocate(p);
  void* q = a.allocate(900);  // the 1024-byte class would have reused p
  CHECK(q != p);
  CHECK(dev.blocks.back().second == 900);
  CHECK(a.allocate(700) == p);
  void* empty = a.allocate(0);  // a block of one byte: every block is a distinct address
  CHECK(dev.blocks.back().second == 1);
  CHECK(dev.allocs == 3);
  a.deallocate(p);
  a.deallocate(q);
  a.deallocate(empty);
  CHECK(a.stats().cached == 1601);
}

TEST_CASE("device allocator: a steady training loop allocates from the backend only in its first step") {
  FakeDevice dev(64 << 20);
  CachingAllocator a(dev.backend(), "fake device");
  const std::vector<size_t> sizes = {64 * 20 * 24 * 24 * 4, 500 * 4, 800 * 500 * 4, 4, 64 * 10 * 4, 64 * 10 * 4};
  int first_step_allocs = 0;
  for (int step = 0; step < 50; ++step) {
    std::vector<void*> live;
    for (const size_t s : sizes) live.push_back(a.allocate(s));
    CHECK(std::set<void*>(live.begin(), live.end()).size() == live.size());  // no block handed out twice
    for (void* p : live) a.deallocate(p);
    if (step == 0) first_step_allocs = dev.allocs;
  }
  CHECK(first_step_allocs == static_cast<int>(sizes.size()));
  CHECK(dev.allocs == first_step_allocs);
  const auto st = a.stats();
  CHECK(st.backend_allocs == first_step_allocs);
  CHECK(st.in_use == 0);
  CHECK(st.peak_in_use >= sizes[0] + sizes[2]);
  CHECK(st.cached == st.peak_in_use);  // everything ever allocated was live at once in each step
}

TEST_CASE("device allocator: out of memory releases the cache and retries once, then says what to do") {
  FakeDevice dev(4096);
  CachingAllocator a(dev.backend(), "CUDA device 0");
  void* p = a.allocate(2048);
  void* q = a.allocate(2048);
  a.deallocate(p);
  a.deallocate(q);
  CHECK(dev.used == 4096);  // all of it cached
  void* held = a.allocate(3000);  // class 3072: fits only once the cache is returned
  CHECK(held != nullptr);
  CHECK(dev.failed == 1);
  CHECK(dev.frees == 2);
  CHECK(a.stats().oom_retries == 1);
  CHECK(a.stats().cached == 0);
  CHECK(a.stats().in_use == 3072);

  a.deallocate(a.allocate(600));  // 1 KiB cached, which the retry releases in vain
  try {
    a.allocate(2500);
    FAIL("expected an out-of-memory error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("out of memory on CUDA device 0") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("requested 2.4 KiB (a block of 2.5 KiB)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("3.0 KiB in use and 0 B cached") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("batch_size") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("the device reports 1024 B free") != std::string::npos, msg);
  }
  CHECK(dev.failed == 3);  // the first try and the retry
  CHECK(a.stats().oom_retries == 2);
  // With nothing cached there is nothing to release: no retry.
  CHECK_THROWS_AS(a.allocate(4000), Error);
  CHECK(dev.failed == 4);
  a.deallocate(held);
}

TEST_CASE("device allocator: threads allocating and freeing at once keep the counters exact") {
  FakeDevice dev(64 << 20);
  CachingAllocator a(dev.backend(), "fake device");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&a, t] {
      for (int i = 0; i < 500; ++i) {
        void* p = a.allocate(static_cast<size_t>(512 * (1 + (i + t) % 7)));
        void* q = a.allocate(4096);
        a.deallocate(p);
        a.deallocate(q);
      }
    });
  for (auto& th : threads) th.join();
  const auto st = a.stats();
  CHECK(st.in_use == 0);
  CHECK(st.cached == dev.used);
  CHECK(st.backend_allocs == dev.allocs);
  CHECK(dev.allocs <= 4 * 8);  // at most one block per class per thread
}

TEST_CASE("GPU: blobs of a steady size reuse device memory instead of calling cudaMalloc") {
  SKIP_WITHOUT_DEVICE();
  { Blob warm({256, 1000}); warm.mutable_gpu_data(); }
  int device = 0;
  void* probe = cuda::alloc_device(1, &device);
  cuda::free_device(probe, device);
  const auto before = cuda::device_memory_stats(device);
  for (int step = 0; step < 20; ++step) {
    Blob b({256, 1000});
    b.mutable_gpu_data();
    b.mutable_gpu_diff();
  }
  const auto after = cuda::device_memory_stats(device);
  // The data block is the warm-up's; the diff block is new once and reused after.
  CHECK(after.backend_allocs <= before.backend_allocs + 1);
  CHECK(after.in_use == before.in_use);
  CHECK(after.peak_in_use >= 2 * 256 * 1000 * sizeof(float));
}
