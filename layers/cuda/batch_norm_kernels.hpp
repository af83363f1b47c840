// BatchNorm on the GPU with Caffe's semantics (see batch_norm_layer.hpp): running
// sums with a scale factor, unbiased variance in the sums, biased in the batch's
// normalisation. Per-channel reductions run one block per channel, and means are kept
// and subtracted in double, like the CPU reference.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

struct BatchNormShape {
  int outer = 0, channels = 0, inner = 0;  // the bottom as (N, C, S)
  float moving_average_fraction = 0.999f, eps = 1e-5f;
};

// Batch statistics: mean, var (C) of x (N, C, S) (biased); then the running sums
// mean_blob, var_blob (C) and factor (1) updated as Caffe does, and inv_std (C).
void batch_norm_batch_stats(const CudaContext& ctx, const BatchNormShape& s, const float* x, double* mean, float* var,
                            float* mean_blob, float* var_blob, float* factor, float* inv_std);
// Global statistics: mean = mean_blob / factor (0 when factor is 0), inv_std from
// var_blob / factor. mean_blob, var_blob, mean, inv_std: (C); factor: (1)
void batch_norm_global_stats(const CudaContext& ctx, const BatchNormShape& s, const float* mean_blob,
                             const float* var_blob, const float* factor, double* mean, float* inv_std);
// y = x_norm = (x - mean) inv_std; x, y, x_norm: (N, C, S), y may alias x; x_norm may be
// null (global statistics: backward needs only inv_std)
void batch_norm_normalize(const CudaContext& ctx, const BatchNormShape& s, const float* x, const double* mean,
                          const float* inv_std, float* y, float* x_norm);
// Batch statistics: dx = (dy - mean(dy) - x_norm mean(dy x_norm)) inv_std;
// global: dx = dy inv_std. dy, x_norm, dx: (N, C, S), dx may alias dy; inv_std (C);
// sums: (2 C) scratch. x_norm is unused (may be null) with global statistics.
void batch_norm_backward(const CudaContext& ctx, const BatchNormShape& s, bool global, const float* x_norm,
                         const float* dy, const float* inv_std, double* sums, float* dx);

}  // namespace crema::cuda
