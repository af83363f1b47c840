// cuDNN pooling and cross-channel LRN behind plain C++ interfaces (no CUDA header),
// for PoolingLayer and LRNLayer. Descriptors are created once; prepare() sets them
// for the current shape (host-only, no device work).
#pragma once

#include <memory>

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

class CudnnPooling {
 public:
  CudnnPooling();
  ~CudnnPooling();
  CudnnPooling(const CudnnPooling&) = delete;
  CudnnPooling& operator=(const CudnnPooling&) = delete;

  // `average`: AVE counting the padding (Caffe's divisor whenever the windows stay
  // inside the padded image), else MAX ignoring the padding. Fails when cuDNN's
  // output size differs from (pooled_h, pooled_w).
  void prepare(bool average, int num, int channels, int height, int width, int pooled_h, int pooled_w, int kernel_h,
               int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w);
  // x: (N, C, H, W); y: (N, C, PH, PW)
  void forward(const CudaContext& ctx, const float* x, float* y);
  // y, dy: (N, C, PH, PW); x, dx: (N, C, H, W); dx overwritten
  void backward(const CudaContext& ctx, const float* y, const float* dy, const float* x, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class CudnnLRN {
 public:
  // cuDNN's limits on cross-channel LRN; outside them the layer uses its kernels.
  static bool expressible(int local_size, float k, float beta);
  CudnnLRN();
  ~CudnnLRN();
  CudnnLRN(const CudnnLRN&) = delete;
  CudnnLRN& operator=(const CudnnLRN&) = delete;

  void prepare(int num, int channels, int height, int width, int local_size, float alpha, float beta, float k);
  // x, y: (N, C, H, W)
  void forward(const CudaContext& ctx, const float* x, float* y);
  // x, y, dy, dx: (N, C, H, W); dx overwritten
  void backward(const CudaContext& ctx, const float* x, const float* y, const float* dy, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::cuda
