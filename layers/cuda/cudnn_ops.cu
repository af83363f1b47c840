// cuDNN pooling and cross-channel LRN (see cudnn_ops.hpp).
#include <cudnn.h>

#include <string>

#include "layers/cuda/cudnn_descriptors.hpp"
#include "layers/cuda/cudnn_ops.hpp"

namespace crema::cuda {

namespace {
const float kOne = 1.f, kZero = 0.f;
}

struct CudnnPooling::Impl {
  TensorDescriptor bottom, top;
  PoolingDescriptor pool;
};

CudnnPooling::CudnnPooling() : impl_(std::make_unique<Impl>()) {}
CudnnPooling::~CudnnPooling() = default;

void CudnnPooling::prepare(bool average, int num, int channels, int height, int width, int pooled_h, int pooled_w,
                           int kernel_h, int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w) {
  Impl& m = *impl_;
  set_nchw(m.bottom, num, channels, height, width);
  set_nchw(m.top, num, channels, pooled_h, pooled_w);
  const cudnnPoolingMode_t mode = average ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING : CUDNN_POOLING_MAX;
  CREMA_CUDA_CHECK(cudnnSetPooling2dDescriptor(m.pool.get(), mode, CUDNN_NOT_PROPAGATE_NAN, kernel_h, kernel_w, pad_h,
                                               pad_w, stride_h, stride_w));
  int n = 0, c = 0, h = 0, w = 0;
  CREMA_CUDA_CHECK(cudnnGetPooling2dForwardOutputDim(m.pool.get(), m.bottom.get(), &n, &c, &h, &w));
  if (h != pooled_h || w != pooled_w)
    throw Error("cuDNN pools to " + std::to_string(h) + "x" + std::to_string(w) + " where Caffe's rule gives " +
                std::to_string(pooled_h) + "x" + std::to_string(pooled_w));
}

void CudnnPooling::forward(const CudaContext& ctx, const float* x, float* y) {
  Impl& m = *impl_;
  CREMA_CUDA_CHECK(
      cudnnPoolingForward(cudnn_handle(ctx), m.pool.get(), &kOne, m.bottom.get(), x, &kZero, m.top.get(), y));
}

void CudnnPooling::backward(const CudaContext& ctx, const float* y, const float* dy, const float* x, float* dx) {
  Impl& m = *impl_;
  CREMA_CUDA_CHECK(cudnnPoolingBackward(cudnn_handle(ctx), m.pool.get(), &kOne, m.top.get(), y, m.top.get(), dy,
                                        m.bottom.get(), x, &kZero, m.bottom.get(), dx));
}

struct CudnnLRN::Impl {
  TensorDescriptor tensor;
  LRNDescriptor lrn;
};

bool CudnnLRN::expressible(int local_size, float k, float beta) {
  return local_size >= CUDNN_LRN_MIN_N && local_size <= CUDNN_LRN_MAX_N && k >= CUDNN_LRN_MIN_K &&
         beta >= CUDNN_LRN_MIN_BETA;
}

CudnnLRN::CudnnLRN() : impl_(std::make_unique<Impl>()) {}
CudnnLRN::~CudnnLRN() = default;

void CudnnLRN::prepare(int num, int channels, int height, int width, int local_size, float alpha, float beta, float k) {
  Impl& m = *impl_;
  set_nchw(m.tensor, num, channels, height, width);
  // cuDNN divides alpha by local_size itself, as Caffe does.
  CREMA_CUDA_CHECK(cudnnSetLRNDescriptor(m.lrn.get(), static_cast<unsigned>(local_size), alpha, beta, k));
}

void CudnnLRN::forward(const CudaContext& ctx, const float* x, float* y) {
  Impl& m = *impl_;
  CREMA_CUDA_CHECK(cudnnLRNCrossChannelForward(cudnn_handle(ctx), m.lrn.get(), CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne,
                                               m.tensor.get(), x, &kZero, m.tensor.get(), y));
}

void CudnnLRN::backward(const CudaContext& ctx, const float* x, const float* y, const float* dy, float* dx) {
  Impl& m = *impl_;
  CREMA_CUDA_CHECK(cudnnLRNCrossChannelBackward(cudnn_handle(ctx), m.lrn.get(), CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne,
                                                m.tensor.get(), y, m.tensor.get(), dy, m.tensor.get(), x, &kZero,
                                                m.tensor.get(), dx));
}

}  // namespace crema::cuda
