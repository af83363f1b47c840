// For layers that may run in place but whose gradient needs the input x (Clip, BNLL,
// Log, Power, AbsVal, PReLU, Scale). Run in place, the top overwrites x before backward; Caffe then reads the
// overwritten values and computes a wrong gradient (or forbids in-place use). crema
// keeps a copy of x in that case only, so out-of-place layers pay nothing.
#pragma once

#include "engine/blob.hpp"
#include "layers/elementwise_map.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

namespace crema {

class KeptInput {
 public:
  // Call at the start of forward, before the top is written.
  void keep(const Blob& bottom, const Blob& top) {
    if (&bottom == &top) copy_.copy_from(bottom, false, true);
  }
  // Instead of keep(), for a forward that writes the copy itself in the pass that
  // reads x: where the copy is to go (count of bottom), or null when not in place.
  float* copy_target(const Blob& bottom, const Blob& top) {
    if (&bottom != &top) return nullptr;
    copy_.reshape_like(bottom);
    return copy_.mutable_cpu_data();
  }
  // copy_target for an x held in a layout copy (a channel-blocked activation): the
  // buffer in `like`'s layout, or null when not in place. data() still reads it plain.
  LayoutCopy* layout_target(const Blob& bottom, const Blob& top, const LayoutCopy& like) {
    if (&bottom != &top) return nullptr;
    copy_.reshape_like(bottom);
    LayoutCopy& target = layout_copy_.prepare(like, *copy_.data_memory());
    layout_copy_.commit(*copy_.data_memory());
    return &target;
  }
  // x as it was at forward: (count of bottom).
  const float* data(const Blob& bottom, const Blob& top) const {
    return &bottom == &top ? copy_.cpu_data() : bottom.cpu_data();
  }
  // The same in its layout copy, when it has one; else null.
  LayoutCopy* layout(const Blob& bottom, const Blob& top) const {
    return &bottom == &top ? copy_.data_memory()->layout() : bottom.data_memory()->layout();
  }

#ifdef CREMA_WITH_CUDA
  // The same two on the device, for the layers' GPU paths (the copy stays on the device).
  void keep_gpu(const cuda::CudaContext& ctx, const Blob& bottom, const Blob& top) {
    if (&bottom != &top) return;
    copy_.reshape_like(bottom);
    cuda::gpu_copy(ctx, bottom.count(), bottom.gpu_data(), copy_.mutable_gpu_data());
  }
  const float* gpu_data(const Blob& bottom, const Blob& top) const {
    return &bottom == &top ? copy_.gpu_data() : bottom.gpu_data();
  }
#endif

  // The element-wise case of the two above: y_i = f(x_i), keeping x first when the
  // layer runs in place ...
  template <typename F>
  void forward(const Blob& bottom, Blob& top, F f) {
    keep(bottom, top);
    map_forward(bottom, top, f);
  }

  // ... and dx_i = dy_i * dydx(x_i), with x as it was at forward.
  template <typename F>
  void backward(const Blob& top, Blob& bottom, F dydx) const {
    map_backward(data(bottom, top), top, bottom, dydx);
  }

 private:
  Blob copy_;
  LayoutOutput layout_copy_;
};

}  // namespace crema
