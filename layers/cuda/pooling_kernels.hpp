// Caffe's pooling on the GPU, exactly as PoolingLayer's CPU reference computes it
// (ceil-mode sizes, AVE divided by the window clipped to the padded image, empty
// windows give 0 and mask -1). Backward gathers per bottom element, so no atomics.
#pragma once

#include "engine/cuda/cuda_context.hpp"
#include "layers/pool_geometry.hpp"

namespace crema::cuda {

struct PoolShape : PoolGeometry {
  int planes = 0;  // N * C
};

// x: (planes, H, W); y, mask: (planes, PH, PW), mask = h * W + w of the max or -1
void max_pool_forward(const CudaContext& ctx, const PoolShape& s, const float* x, float* y, float* mask);
// dy, mask: (planes, PH, PW); dx: (planes, H, W), overwritten
void max_pool_backward(const CudaContext& ctx, const PoolShape& s, const float* dy, const float* mask, float* dx);
// x: (planes, H, W); y: (planes, PH, PW)
void ave_pool_forward(const CudaContext& ctx, const PoolShape& s, const float* x, float* y);
// dy: (planes, PH, PW); dx: (planes, H, W), overwritten
void ave_pool_backward(const CudaContext& ctx, const PoolShape& s, const float* dy, float* dx);

}  // namespace crema::cuda
