// CUDA-enabled implementation of cuda_runtime_api.hpp and CudaContext.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/cuda/kernel_probe.hpp"

namespace crema::cuda {

void throw_cuda_error(const char* call, const std::string& what, const char* file, int line) {
  throw Error(std::string(call) + " failed: " + what + " (" + file + ":" + std::to_string(line) + ")");
}

namespace {
bool sync_launches() {
  static const bool sync = [] {
    const char* v = std::getenv("CREMA_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return sync;
}
}  // namespace

std::string describe(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
      if (!sync_launches())
        return std::string(cudaGetErrorString(e)) +
               " (a fault inside a kernel, reported by the first call that waited for the device after it: "
               "possibly an earlier layer's kernel, not this call's; run again with CREMA_CUDA_SYNC=1 to name the "
               "kernel; the device is unusable for the rest of this run)";
      [[fallthrough]];
    default:
      return cudaGetErrorString(e);
  }
}

void check_launch(cudaStream_t stream, const char* file, int line) {
  check(cudaGetLastError(), "kernel launch", file, line);
  if (!sync_launches()) return;
  // Waited for at once, a fault is this kernel's own.
  const cudaError_t e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) throw_cuda_error("kernel (waited for by CREMA_CUDA_SYNC)", cudaGetErrorString(e), file, line);
}

bool compiled_in() { return true; }

std::string version_string(int major, int minor) { return std::to_string(major) + "." + std::to_string(minor); }

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = cudaGetErrorString(e);
    // The runtime says "driver version is insufficient" also where no driver is installed at
    // all (a machine without a GPU), which would send a user to upgrade one.
    if (e == cudaErrorInsufficientDriver && why) {
      if (void* driver = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
        ::dlclose(driver);
        int driver_version = 0, runtime_version = 0;
        if (cudaDriverGetVersion(&driver_version) == cudaSuccess &&
            cudaRuntimeGetVersion(&runtime_version) == cudaSuccess)
          *why += " (the driver supports CUDA " + version_string(driver_version / 1000, driver_version % 1000 / 10) +
                  ", this crema was built with CUDA " +
                  version_string(runtime_version / 1000, runtime_version % 1000 / 10) +
                  ": update the NVIDIA driver, or build crema with the CUDA toolkit the driver supports)";
      } else {
        *why = "no NVIDIA driver is installed here (libcuda.so.1 cannot be loaded), so no GPU can be used";
      }
    }
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime reports no devices";
  return n;
}

void require_device(int id) {
  std::string why;
  const int n = device_count(&why);
  if (n == 0) throw Error("no usable CUDA device: " + why);
  if (id < 0 || id >= n)
    throw Error("no usable CUDA device: device " + std::to_string(id) + " requested, " + std::to_string(n) +
                " present (ids 0.." + std::to_string(n - 1) + ")");
}

namespace {

// For calls whose failure changes nothing for crema (a free, restoring the current device):
// their error must not stay in the runtime's last-error slot, where the next launch check
// would report it as that kernel's.
void discard_error(cudaError_t e) noexcept {
  if (e != cudaSuccess) cudaGetLastError();
}

// Makes `device` current for one scope; device memory calls act on the current device.
class DeviceGuard {
 public:
  // A failure here is left to the call that needs the device to report.
  explicit DeviceGuard(int device) {
    const cudaError_t got = cudaGetDevice(&previous_);
    discard_error(got);
    if (got != cudaSuccess || previous_ == device) return;
    switched_ = cudaSetDevice(device) == cudaSuccess;
    if (!switched_) cudaGetLastError();
  }
  ~DeviceGuard() {
    if (switched_) discard_error(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

CachingAllocator::Backend device_backend(int device) {
  CachingAllocator::Backend b;
  b.alloc = [device](size_t bytes) -> void* {
    DeviceGuard guard(device);
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but would be reported by the next check
      return nullptr;
    }
    check(e, "cudaMalloc", __FILE__, __LINE__);
    return p;
  };
  b.free = [device](void* p) {
    DeviceGuard guard(device);
    discard_error(cudaFree(p));  // during exit the runtime may be gone already; nothing to do then
  };
  b.describe = [device]() -> std::string {
    DeviceGuard guard(device);
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      cudaGetLastError();
      return "no memory figures";
    }
    return format_bytes(free_bytes) + " free of " + format_bytes(total_bytes);
  };
#ifdef CREMA_CUDA_EMULATION
  // The emulation checks every copy and cuBLAS/cuDNN operand against its block, and its
  // sanitized build every kernel's access: size classes would hide an overrun of up to
  // a quarter of a blob.
  b.exact_sizes = true;
#endif
  return b;
}

// One allocator per device id, created on first use. Never destroyed: blobs held by
// static objects may free device memory while the program exits.
struct Allocators {
  std::mutex mutex;
  std::vector<CachingAllocator*> by_device;
};
Allocators& allocators() {
  static auto* all = new Allocators();
  return *all;
}

CachingAllocator& allocator_for(int device) {
  auto& all = allocators();
  std::lock_guard<std::mutex> lock(all.mutex);
  const size_t index = static_cast<size_t>(device);
  if (all.by_device.size() <= index) all.by_device.resize(index + 1, nullptr);
  if (!all.by_device[index])
    all.by_device[index] = new CachingAllocator(device_backend(device), "CUDA device " + std::to_string(device));
  return *all.by_device[index];
}

CachingAllocator* existing_allocator(int device) {
  auto& all = allocators();
  std::lock_guard<std::mutex> lock(all.mutex);
  if (device < 0 || static_cast<size_t>(device) >= all.by_device.size()) return nullptr;
  return all.by_device[static_cast<size_t>(device)];
}

// The runtime's synchronous copies and cudaMemset run on the legacy default stream,
// which does not wait for the non-blocking stream the kernels run on (CudaContext),
// nor make those kernels wait for it: wait for the device on both sides.
void wait_for_device() { CREMA_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace

void* alloc_device(size_t bytes, int* device) {
  // Without a usable device, say so plainly rather than with the runtime's first error.
  static const std::string unusable = [] {
    std::string why;
    return device_count(&why) > 0 ? std::string() : why;
  }();
  if (!unusable.empty()) throw Error("no usable CUDA device: " + unusable);
  CREMA_CUDA_CHECK(cudaGetDevice(device));
  return allocator_for(*device).allocate(bytes);
}

void free_device(void* p, int device) noexcept {
  if (!p) return;
  int owner = device;
  if (owner < 0 && cudaGetDevice(&owner) != cudaSuccess) return;
  if (CachingAllocator* a = existing_allocator(owner)) {
    a->deallocate(p);
  } else {  // not from alloc_device
    DeviceGuard guard(owner);
    discard_error(cudaFree(p));
  }
}

DeviceMemoryStats device_memory_stats(int id) {
  const CachingAllocator* a = existing_allocator(id);
  return a ? a->stats() : DeviceMemoryStats{};
}

void zero_device(void* p, size_t bytes) {
  wait_for_device();
  CREMA_CUDA_CHECK(cudaMemset(p, 0, bytes));
  wait_for_device();
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  wait_for_device();
  CREMA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  wait_for_device();  // from pageable memory the copy may still be in flight on return
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  wait_for_device();
  CREMA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void use_device(int device) { CREMA_CUDA_CHECK(cudaSetDevice(device)); }

void* alloc_pinned(size_t bytes) {
  void* p = nullptr;
  CREMA_CUDA_CHECK(cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocPortable));
  return p;
}
void free_pinned(void* p) noexcept {
  if (p) discard_error(cudaFreeHost(p));
}

void* alloc_device_uncached(size_t bytes) {
  void* p = nullptr;
  CREMA_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return p;
}
void free_device_uncached(void* p, int device) noexcept {
  if (!p) return;
  DeviceGuard guard(device);
  discard_error(cudaFree(p));
}

void* create_stream(int device) {
  DeviceGuard guard(device);
  cudaStream_t stream = nullptr;
  CREMA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}
void destroy_stream(void* stream) noexcept {
  if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

void* create_event(int device) {
  DeviceGuard guard(device);
  cudaEvent_t event = nullptr;
  CREMA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}
void destroy_event(void* event) noexcept {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void record_event(void* event, void* stream) {
  CREMA_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}
void wait_event(void* stream, void* event) {
  CREMA_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}
void wait_event_on_host(void* event) { CREMA_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }

void copy_async(void* dst, const void* src, size_t bytes, void* stream) {
  CREMA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)));
}
void synchronize_stream(void* stream) { CREMA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

std::string runtime_version() {
  return version_string(CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
}
std::string cudnn_version() {
  return std::to_string(CUDNN_MAJOR) + "." + std::to_string(CUDNN_MINOR) + "." + std::to_string(CUDNN_PATCHLEVEL);
}

std::string driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "none installed";
  return version_string(v / 1000, v % 1000 / 10);
}
std::string loaded_runtime_version() {
  int v = 0;
  CREMA_CUDA_CHECK(cudaRuntimeGetVersion(&v));
  return version_string(v / 1000, v % 1000 / 10);
}
std::string loaded_cudnn_version() {
  // cuDNN 9 encodes major * 10000 + minor * 100 + patch.
  const size_t v = cudnnGetVersion();
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000 / 100) + "." + std::to_string(v % 100);
}

std::vector<DeviceInfo> query_devices(int id) {
  std::string why;
  const int n = device_count(&why);
  if (n == 0) throw Error("no usable CUDA device: " + why);
  if (id >= 0) require_device(id);
  std::vector<DeviceInfo> out;
  for (int d = id >= 0 ? id : 0; d < (id >= 0 ? id + 1 : n); ++d) {
    DeviceInfo info;
    info.id = d;
    cudaDeviceProp prop{};
    CREMA_CUDA_CHECK(cudaGetDeviceProperties(&prop, d));
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    info.total_memory = prop.totalGlobalMem;
    info.multiprocessors = prop.multiProcessorCount;
    int khz = 0;
    CREMA_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, d));
    info.clock_mhz = khz / 1000;
    CREMA_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, d));
    info.memory_clock_mhz = khz / 1000;
    CREMA_CUDA_CHECK(cudaDeviceGetAttribute(&info.memory_bus_bits, cudaDevAttrGlobalMemoryBusWidth, d));
    // Free memory and the kernel probe need a context on the device, which a device
    // in exclusive mode held by another process refuses.
    int previous = 0;
    CREMA_CUDA_CHECK(cudaGetDevice(&previous));
    size_t free_bytes = 0, total_bytes = 0;
    cudaError_t e = cudaSetDevice(d);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      info.kernels = std::string("no: the device cannot be opened: ") + cudaGetErrorString(e);
    } else {
      info.free_memory = free_bytes;
      info.kernels_supported = probe_kernel_image(info.major, info.minor, &info.kernels);
    }
    discard_error(cudaSetDevice(previous));
    out.push_back(std::move(info));
  }
  return out;
}

std::unique_ptr<CudaContext> CudaContext::create(int device) {
  require_device(device);
  std::unique_ptr<CudaContext> ctx(new CudaContext());
  ctx->device_ = device;
  CREMA_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  CREMA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ctx->stream_ = stream;
  cublasHandle_t blas = nullptr;
  CREMA_CUDA_CHECK(cublasCreate(&blas));
  ctx->cublas_ = blas;
  CREMA_CUDA_CHECK(cublasSetStream(blas, stream));
  cudnnHandle_t dnn = nullptr;
  CREMA_CUDA_CHECK(cudnnCreate(&dnn));
  ctx->cudnn_ = dnn;
  CREMA_CUDA_CHECK(cudnnSetStream(dnn, stream));
  return ctx;
}

CudaContext::~CudaContext() {
  // Blocks freed to the caching allocator are handed out again without waiting, which is
  // safe only while their last users have finished: let this stream's queued work end.
  if (stream_) (void)cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  free_device(workspace_, workspace_device_);
  if (cudnn_) cudnnDestroy(static_cast<cudnnHandle_t>(cudnn_));
  if (cublas_) cublasDestroy(static_cast<cublasHandle_t>(cublas_));
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void CudaContext::synchronize() const {
  CREMA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
}

void* CudaContext::workspace(size_t bytes) const {
  if (bytes <= workspace_bytes_) return workspace_;
  DeviceGuard guard(device_);  // on this context's device, whichever the thread has current
  // Freed first, so that the cache can hand the old block out as part of the answer
  // when the device is short of memory.
  free_device(workspace_, workspace_device_);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  workspace_ = alloc_device(bytes, &workspace_device_);
  workspace_bytes_ = bytes;
  return workspace_;
}

void CudaContext::allow_tf32(bool allowed) {
  // CUBLAS_DEFAULT_MATH keeps cublasSgemm in FP32 (no tensor cores for float data).
  CREMA_CUDA_CHECK(cublasSetMathMode(static_cast<cublasHandle_t>(cublas_),
                                     allowed ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

}  // namespace crema::cuda
