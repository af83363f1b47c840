// Turns CUDA, cuBLAS and cuDNN status codes into crema::Error naming the call and
// the source location. Included only by CUDA-enabled sources.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "engine/error.hpp"

namespace crema::cuda {

[[noreturn]] void throw_cuda_error(const char* call, const std::string& what, const char* file, int line);
// The runtime's message, and for a fault inside a kernel (an illegal address, a failed
// launch: reported by whichever call next waits for the device, and by every call after
// it) that it need not be this call's, and how to find the kernel.
std::string describe(cudaError_t e);

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda_error(call, describe(e), file, line);
}
inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw_cuda_error(call, "cuBLAS status " + std::to_string(static_cast<int>(s)), file, line);
}
inline void check(cudnnStatus_t s, const char* call, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS) throw_cuda_error(call, cudnnGetErrorString(s), file, line);
}

// After a kernel launch: a bad launch configuration is an error here. With CREMA_CUDA_SYNC=1
// in the environment (for bringing up a new device or chasing a fault) every launch also
// waits for its kernel, so a fault inside one names its own launch instead of the next
// call that happens to synchronise.
void check_launch(cudaStream_t stream, const char* file, int line);

}  // namespace crema::cuda

#define CREMA_CUDA_CHECK(call) ::crema::cuda::check((call), #call, __FILE__, __LINE__)
#define CREMA_CUDA_LAUNCHED(stream) ::crema::cuda::check_launch((stream), __FILE__, __LINE__)
