// Built when CUDA is off: every device request fails with one clear message.
#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"

namespace crema::cuda {

namespace {
[[noreturn]] void no_cuda() {
  throw Error("no usable CUDA device: crema was built without CUDA (configure with -DCREMA_CUDA=ON)");
}
}  // namespace

bool compiled_in() { return false; }
int device_count(std::string* why) {
  if (why) *why = "crema was built without CUDA";
  return 0;
}
void require_device(int) { no_cuda(); }
void* alloc_device(size_t, int*) { no_cuda(); }
void free_device(void*, int) noexcept {}
void zero_device(void*, size_t) { no_cuda(); }
void copy_to_device(void*, const void*, size_t) { no_cuda(); }
void copy_to_host(void*, const void*, size_t) { no_cuda(); }
DeviceMemoryStats device_memory_stats(int) { return {}; }
void use_device(int) { no_cuda(); }
void* alloc_pinned(size_t) { no_cuda(); }
void free_pinned(void*) noexcept {}
void* alloc_device_uncached(size_t) { no_cuda(); }
void free_device_uncached(void*, int) noexcept {}
void* create_stream(int) { no_cuda(); }
void destroy_stream(void*) noexcept {}
void* create_event(int) { no_cuda(); }
void destroy_event(void*) noexcept {}
void record_event(void*, void*) { no_cuda(); }
void wait_event(void*, void*) { no_cuda(); }
void wait_event_on_host(void*) { no_cuda(); }
void copy_async(void*, const void*, size_t, void*) { no_cuda(); }
void synchronize_stream(void*) { no_cuda(); }

std::string runtime_version() { return "not compiled in"; }
std::string cudnn_version() { return "not compiled in"; }
std::vector<DeviceInfo> query_devices(int) { no_cuda(); }
std::string driver_version() { return "not used"; }
std::string loaded_runtime_version() { return "not compiled in"; }
std::string loaded_cudnn_version() { return "not compiled in"; }
std::string compiled_architectures() { return "none"; }

std::unique_ptr<CudaContext> CudaContext::create(int device) {
  require_device(device);
  return nullptr;
}
CudaContext::~CudaContext() = default;
void CudaContext::synchronize() const {}
void CudaContext::allow_tf32(bool) {}
void* CudaContext::workspace(size_t) const { return nullptr; }

}  // namespace crema::cuda
