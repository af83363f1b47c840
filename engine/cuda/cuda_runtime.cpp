// CUDA-enabled implementation of cuda_runtime_api.hpp and CudaContext.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"

namespace crema::cuda {

void throw_cuda_error(const char* call, const std::string& what, const char* file, int line) {
  throw Error(std::string(call) + " failed: " + what + " (" + file + ":" + std::to_string(line) + ")");
}

bool compiled_in() { return true; }

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = cudaGetErrorString(e);
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

void* alloc_device(size_t bytes, int* device) {
  // Without a usable device, say so plainly rather than with the runtime's first error.
  static const std::string unusable = [] {
    std::string why;
    return device_count(&why) > 0 ? std::string() : why;
  }();
  if (!unusable.empty()) throw Error("no usable CUDA device: " + unusable);
  CREMA_CUDA_CHECK(cudaGetDevice(device));
  void* p = nullptr;
  CREMA_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return p;
}

void free_device(void* p, int device) noexcept {
  int current = -1;
  cudaGetDevice(&current);
  if (device >= 0 && device != current) cudaSetDevice(device);
  cudaFree(p);
  if (device >= 0 && device != current) cudaSetDevice(current);
}

void zero_device(void* p, size_t bytes) { CREMA_CUDA_CHECK(cudaMemset(p, 0, bytes)); }
void copy_to_device(void* dst, const void* src, size_t bytes) {
  CREMA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  CREMA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

std::string runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}
std::string cudnn_version() {
  return std::to_string(CUDNN_MAJOR) + "." + std::to_string(CUDNN_MINOR) + "." + std::to_string(CUDNN_PATCHLEVEL);
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
  if (cudnn_) cudnnDestroy(static_cast<cudnnHandle_t>(cudnn_));
  if (cublas_) cublasDestroy(static_cast<cublasHandle_t>(cublas_));
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void CudaContext::synchronize() const {
  CREMA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
}

}  // namespace crema::cuda
