// Per-device state for GPU execution: the device id, one stream, and the cuBLAS and
// cuDNN handles bound to that stream. Only .cu files and cuda_*.cpp see the real
// handle types; everything else holds a CudaContext by pointer.
#pragma once

#include <cstddef>
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
  // Device scratch of at least `bytes` for cuDNN's convolutions, valid until the next
  // call. One for every layer on this context: their calls run in turn on its one
  // stream, where a workspace per layer would hold hundreds of MiB in each of a deep
  // net's convolutions. It grows and never shrinks.
  void* workspace(size_t bytes) const;

 private:
  CudaContext() = default;
  int device_ = -1;
  void* stream_ = nullptr;
  void* cublas_ = nullptr;
  void* cudnn_ = nullptr;
  // Scratch handed out by workspace(): a block from the caching allocator, which hands
  // it out again (once replaced by a larger one) only to work queued after its users.
  mutable void* workspace_ = nullptr;  // bytes: workspace_bytes_
  mutable size_t workspace_bytes_ = 0;
  mutable int workspace_device_ = -1;
};

}  // namespace crema::cuda
