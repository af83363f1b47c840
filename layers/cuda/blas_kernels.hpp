// Device kernels for the layers built from BLAS-like pieces: InnerProduct's bias,
// Scale and Bias (layers/axis_broadcast.hpp's (outer, dim, inner) view), Concat and
// Slice (copies of a part along an axis) and Eltwise MAX. Host functions taking the
// context, sizes and device pointers; the work is queued on the context's stream.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

// y = x * scale[d] + bias[d]; scale or bias may be null (1 / 0); y may alias x.
// x, y: (outer, dim, inner); scale, bias: (dim)
void broadcast_apply_gpu(const CudaContext& ctx, int outer, int dim, int inner, const float* x, const float* scale,
                         const float* bias, float* y);
// out[d] = Σ over outer and inner of a (times b where b is given), summed in double;
// added to out when `accumulate`, else written. a, b: (outer, dim, inner); out: (dim)
void broadcast_reduce_gpu(const CudaContext& ctx, int outer, int dim, int inner, const float* a, const float* b,
                          float* out, bool accumulate);

// Copies between a whole (outer, whole_axis, inner) and its part (outer, part_axis,
// inner) that starts at `offset` along the axis: whole → part when to_part, else
// part → whole (layers/slice_layer.hpp's copy_axis_part).
void copy_axis_part_gpu(const CudaContext& ctx, int outer, int whole_axis, int part_axis, int offset, int inner,
                        bool to_part, const float* from, float* to);

// Eltwise MAX, bottom by bottom: first y = max(x0, x1) with from = the winner (ties
// to bottom 1), then for each further bottom k, where xk > y: y = xk, from = k.
// x0, x1, xk, y, from: (n); from holds bottom indices as floats.
void eltwise_max_first_gpu(const CudaContext& ctx, int n, const float* x0, const float* x1, float* y, float* from);
void eltwise_max_next_gpu(const CudaContext& ctx, int n, const float* xk, int k, float* y, float* from);
// dx = dy where bottom k gave the output, else 0. dy, from, dx: (n)
void eltwise_max_backward_gpu(const CudaContext& ctx, int n, const float* dy, const float* from, int k, float* dx);

}  // namespace crema::cuda
