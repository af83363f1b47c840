// The device side of the CUDA emulation (tests/cuda_emu/README.md): force-included,
// ahead of everything else, into each of crema's .cu files after
// rewrite_launches.py has turned their `kernel<<<grid, block, shared, stream>>>(args)`
// into `crema_emu::launch(...)`. The files then compile as plain C++ and their kernels
// run on the host, each block's threads as fibers switching at __syncthreads, so the
// GPU tests check crema's kernels and its use of the CUDA, cuBLAS and cuDNN APIs on a
// machine without a GPU. Work waits in its stream until the host waits for it, so a
// missing wait shows; it proves the arithmetic and the ordering, not timing or races.
#pragma once

// Blocks run one after another on one host thread, so a block's shared memory can be
// a static: every thread of the block sees the same one, the next block reuses it.
// (rewrite_launches.py also makes each block find it filled with 0xff: fresh_shared.)
#define __shared__ static

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// What nvcc would list for `-arch sm_90`, read by kernel_probe.cu.
#define __CUDA_ARCH_LIST__ 900

// The built-in variables, set by the scheduler before it resumes a thread.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace crema_emu {

// Suspends the calling device thread until every thread of its block has arrived.
void sync_threads();

// The scheduler (emu_runtime.cpp): checks the launch now and queues it on `stream`,
// to run `thread` once per thread of the grid. `pointers` are the kernel's pointer
// arguments, checked to lie in device memory.
// `entry` is the kernel function itself, for the launch log (CREMA_EMU_LAUNCH_LOG).
void run_grid(const char* kernel, const void* entry, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
              std::function<void()> thread, const void* const* pointers, size_t pointer_count);

// Fills the shared variable at p (bytes long) with 0xff bytes the first time the
// current block reaches its declaration, so that a read of it before any thread of the
// block wrote it shows (NaN, -1) instead of the previous block's value.
void fresh_shared(void* p, size_t bytes);

// A warp shuffle as every thread of the block calls it (crema calls them only so): the
// value from the thread `delta` lanes up in the same warp, or the caller's own when
// that lane is past the warp's end.
uint64_t shuffle_down(uint64_t bits, unsigned delta);

// The kernel's parameter types as the compiler spells them, e.g. "long int,
// crema::cuda::{anonymous}::ReluForward, const float*, float*": with a launch through a
// template (engine/cuda/grid.hpp) the launch's own name is only "kernel".
template <typename... Params>
const char* parameter_types() {
  static const std::string types = [f = std::string(__PRETTY_FUNCTION__)] {
    const size_t from = f.find("Params = {");
    return from == std::string::npos ? f : f.substr(from + 10, f.rfind('}') - from - 10);
  }();
  return types.c_str();
}

template <typename T>
const void* pointer_of(const T& arg) {
  if constexpr (std::is_pointer_v<T>) {
    return static_cast<const void*>(arg);
  } else {
    return nullptr;
  }
}

// kernel<<<grid, block, shared, stream>>>(args...): the arguments are converted to the
// kernel's parameter types once, as the launch would copy them, kept until the launch
// runs, and each thread calls the kernel with its own copy of them.
template <typename... Params, typename... Args>
void launch(const char* name, dim3 grid, dim3 block, size_t shared, cudaStream_t stream, void (*kernel)(Params...),
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  const auto params = std::make_shared<const std::tuple<Params...>>(std::forward<Args>(args)...);
  const void* pointers[sizeof...(Params) + 1] = {nullptr};
  size_t count = 0;
  std::apply(
      [&](const auto&... p) {
        ((std::is_pointer_v<std::decay_t<decltype(p)>> ? void(pointers[count++] = pointer_of(p)) : void()), ...);
      },
      *params);
  const std::string described = std::string(name) + "(" + parameter_types<Params...>() + ")";
  run_grid(
      described.c_str(), reinterpret_cast<const void*>(kernel), grid, block, shared, stream,
      [params, kernel] { std::apply([kernel](Params... copy) { kernel(copy...); }, *params); }, pointers, count);
}

}  // namespace crema_emu

inline void __syncthreads() { crema_emu::sync_threads(); }

template <typename T>
T __shfl_down_sync(unsigned /*mask*/, T v, unsigned delta) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = crema_emu::shuffle_down(bits, delta);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

// Device threads of one host thread never run at the same time: plain read-modify-write.
template <typename T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}

// Round-to-nearest arithmetic that the compiler may not fuse: host code is compiled
// without contraction across statements anyway.
inline float __fsub_rn(float a, float b) { return a - b; }

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
// CUDA's min and max for the types kernels use (its float ones are fminf and fmaxf).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a < b ? b : a; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

// cuda_runtime.h declares this overload for nvcc only.
template <typename T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T* entry) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}
