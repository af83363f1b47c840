// LSTM cell kernels (see recurrent_kernels.hpp); the math is lstm_unit_math.hpp's.
#include <cstdint>

#include "engine/cuda/grid.hpp"
#include "layers/cuda/recurrent_kernels.hpp"
#include "layers/lstm_unit_math.hpp"

namespace crema::cuda {

namespace {
struct DeviceTanh {
  __device__ float operator()(float x) const { return tanhf(x); }
};

// n = N H elements. c_prev, c, h: (N, H); x: (N, 4H); cont: (N)
__global__ void unit_forward_kernel(int64_t n, int hidden, const float* c_prev, const float* x, const float* cont,
                                    float* c, float* h) {
  for (int64_t i = first_index(); i < n; i += grid_stride())
    lstm::unit_forward(DeviceTanh{}, hidden, static_cast<int>(i / hidden), static_cast<int>(i % hidden), c_prev, x, cont, c, h);
}

// n = N H elements. c_prev, dc, dh, dc_prev: (N, H); x, dx: (N, 4H); cont: (N)
__global__ void unit_backward_kernel(int64_t n, int hidden, const float* c_prev, const float* x, const float* cont,
                                     const float* dc, const float* dh, float* dx, float* dc_prev) {
  for (int64_t i = first_index(); i < n; i += grid_stride())
    lstm::unit_backward(DeviceTanh{}, hidden, static_cast<int>(i / hidden), static_cast<int>(i % hidden), c_prev, x, cont, dc, dh,
                        dx, dc_prev);
}
}  // namespace

void lstm_unit_forward(const CudaContext& ctx, int num, int hidden, const float* c_prev, const float* x,
                       const float* cont, float* c, float* h) {
  launch(ctx, static_cast<int64_t>(num) * hidden, unit_forward_kernel, hidden, c_prev, x, cont, c, h);
}

void lstm_unit_backward(const CudaContext& ctx, int num, int hidden, const float* c_prev, const float* x,
                        const float* cont, const float* dc, const float* dh, float* dx, float* dc_prev) {
  launch(ctx, static_cast<int64_t>(num) * hidden, unit_backward_kernel, hidden, c_prev, x, cont, dc, dh, dx, dc_prev);
}

}  // namespace crema::cuda
