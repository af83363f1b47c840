// RAII owners of cuDNN descriptors: created once, destroyed with their owner. For
// .cu files only (includes cudnn.h).
#pragma once

#include <cudnn.h>

#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { CREMA_CUDA_CHECK(Create(&desc_)); }
  ~CudnnDescriptor() { Destroy(desc_); }  // destruction cannot fail on a valid descriptor
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  T get() const { return desc_; }

 private:
  T desc_{};
};

using TensorDescriptor =
    CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDescriptor =
    CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using PoolingDescriptor =
    CudnnDescriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using LRNDescriptor = CudnnDescriptor<cudnnLRNDescriptor_t, cudnnCreateLRNDescriptor, cudnnDestroyLRNDescriptor>;

inline cudnnHandle_t cudnn_handle(const CudaContext& ctx) { return static_cast<cudnnHandle_t>(ctx.cudnn()); }

// A dense (n, c, h, w) float tensor.
inline void set_nchw(const TensorDescriptor& d, int n, int c, int h, int w) {
  CREMA_CUDA_CHECK(cudnnSetTensor4dDescriptor(d.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
}

}  // namespace crema::cuda
