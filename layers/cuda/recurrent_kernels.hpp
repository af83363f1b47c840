// Device kernels of the recurrent layers (LSTM, LSTMUnit): one thread per (stream,
// unit), each running layers/lstm_unit_math.hpp's step, the same code the CPU loops
// run. Every pointer is a device pointer; the work is queued on the context's stream.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

// c_prev, c, h: (N, H); x: (N, 4H) gate pre-activations i, f, o, g; cont: (N)
void lstm_unit_forward(const CudaContext& ctx, int num, int hidden, const float* c_prev, const float* x,
                       const float* cont, float* c, float* h);
// dc, dh, dc_prev: (N, H), dc_prev may alias dc; dx: (N, 4H) written
void lstm_unit_backward(const CudaContext& ctx, int num, int hidden, const float* c_prev, const float* x,
                        const float* cont, const float* dc, const float* dh, float* dx, float* dc_prev);

}  // namespace crema::cuda
