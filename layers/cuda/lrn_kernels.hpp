// LRN on the GPU, as LRNLayer's CPU reference computes it, for both regions: each
// thread sums its own window (local_size channels, or local_size² pixels).
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

struct LrnShape {
  int num = 0, channels = 0, height = 0, width = 0;
  int local_size = 5;
  bool across_channels = true;
  float shift = 1.f, coef = 1.f, beta = 0.75f;  // scale = shift + coef * S(x²), y = x scale^-beta
};

// x, scale, y: (N, C, H, W)
void lrn_forward(const CudaContext& ctx, const LrnShape& s, const float* x, float* scale, float* y);
// x, dy, scale, dx: (N, C, H, W); ratio: (N, C, H, W) scratch; dx overwritten
void lrn_backward(const CudaContext& ctx, const LrnShape& s, const float* x, const float* dy, const float* scale,
                  float* ratio, float* dx);

}  // namespace crema::cuda
