// The few CUDA runtime calls the engine needs, behind plain C++ signatures so that
// engine code compiles without CUDA headers. In a build without CUDA every call
// throws "no usable CUDA device: crema was built without CUDA".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/cuda/device_allocator.hpp"

namespace crema::cuda {

bool compiled_in();
// Number of usable devices; 0 with the reason in *why when none.
int device_count(std::string* why = nullptr);
// Throws Error("no usable CUDA device: ...") unless device `id` can be used.
void require_device(int id);

// Device memory through the current device's CachingAllocator: *device receives the
// device the block lives on, which free_device needs back.
void* alloc_device(size_t bytes, int* device);
void free_device(void* p, int device) noexcept;
// The counters of device `id`'s allocator (all zero before its first allocation).
DeviceMemoryStats device_memory_stats(int id);
// Copies and fills wait for the device's queued kernels (they run on a non-blocking
// stream, which the runtime's synchronous calls would not wait for).
void zero_device(void* p, size_t bytes);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);

// For staging data beside the compute stream (the prefetcher's batches):
// page-locked host memory, which the device copies from asynchronously (from
// pageable memory the runtime stages each copy itself, and blocks); streams and
// events of a device as opaque handles (cudaStream_t, cudaEvent_t); and the calls
// that order them. use_device makes `device` the calling thread's device.
void use_device(int device);
void* alloc_pinned(size_t bytes);
void free_pinned(void* p) noexcept;
// Device memory outside the caching allocator, on the calling thread's device: for
// buffers written from another stream than the compute stream (the cache hands a
// freed block out again at once, which is safe only while one stream uses it).
void* alloc_device_uncached(size_t bytes);
void free_device_uncached(void* p, int device) noexcept;
void* create_stream(int device);  // non-blocking: never waits for the legacy default stream
void destroy_stream(void* stream) noexcept;
void* create_event(int device);   // timing disabled
void destroy_event(void* event) noexcept;
void record_event(void* event, void* stream);  // queued on `stream`
void wait_event(void* stream, void* event);    // `stream`'s later work waits for `event`
void wait_event_on_host(void* event);          // the calling thread waits for `event`
void copy_async(void* dst, const void* src, size_t bytes, void* stream);  // any direction
void synchronize_stream(void* stream);

std::string runtime_version();  // "13.0" or "not compiled in"
std::string cudnn_version();    // "9.x.y" or "not compiled in"

// What `crema device` prints about one device (Caffe's device_query).
struct DeviceInfo {
  int id = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  size_t total_memory = 0, free_memory = 0;
  int multiprocessors = 0;
  int clock_mhz = 0, memory_clock_mhz = 0;
  int memory_bus_bits = 0;
  // Whether crema's kernels load on this device, and how: "yes (sm_90 binary)",
  // "yes (PTX 9.0, compiled by the driver when loaded)" or "no: <why>".
  bool kernels_supported = false;
  std::string kernels;
};
// Every device (id < 0) or device `id`. Throws Error("no usable CUDA device: ...") when
// there is none (or no device `id`), or crema was built without CUDA.
std::vector<DeviceInfo> query_devices(int id = -1);
std::string driver_version();           // the installed driver's CUDA version, e.g. "13.0"
std::string loaded_runtime_version();   // the libcudart in use, e.g. "13.0"
std::string loaded_cudnn_version();     // the libcudnn in use, e.g. "9.19.0"
std::string compiled_architectures();   // "sm_80, sm_90"

}  // namespace crema::cuda
