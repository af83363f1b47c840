// Per-device state for GPU execution: the device id, one stream, and the cuBLAS and
// cuDNN handles bound to that stream. Only .cu files and cuda_*.cpp see the real
// handle types; everything else holds a CudaContext by pointer.
#pragma once

#include <memory>

namespace crema::cuda {

class CudaContext {
 public:
  // Throws Error("no usable CUDA device: ...") when `device` cannot be used.
  static std::unique_ptr<CudaContext> create(int device);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  int device() const { return device_; }
  void* stream() const { return stream_; }         // cudaStream_t
  void* cublas() const { return cublas_; }         // cublasHandle_t
  void* cudnn() const { return cudnn_; }           // cudnnHandle_t
  void synchronize() const;
  // Whether cuBLAS's products may round their inputs to TF32 on tensor cores
  // (precision: tf32); off by default, so every product is computed in FP32.
  void allow_tf32(bool allowed);

 private:
  CudaContext() = default;
  int device_ = -1;
  void* stream_ = nullptr;
  void* cublas_ = nullptr;
  void* cudnn_ = nullptr;
};

}  // namespace crema::cuda
