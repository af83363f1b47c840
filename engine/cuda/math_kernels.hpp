// Host-callable wrappers for the element-wise device kernels (see math_kernels.cu).
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

void gpu_set(const CudaContext& ctx, int n, float value, float* y);                      // y: (n)
void gpu_axpy(const CudaContext& ctx, int n, float alpha, const float* x, float* y);    // x, y: (n)

}  // namespace crema::cuda
