#include "layers/absval_layer.hpp"

#include <cmath>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

void AbsValLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  input_.forward(*bottom[0], *top[0], [](float x) { return std::fabs(x); });
}

void AbsValLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  input_.backward(*top[0], *bottom[0], [](float x) { return x > 0.f ? 1.f : x < 0.f ? -1.f : 0.f; });
}

#ifdef CREMA_WITH_CUDA
void AbsValLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  const int64_t n = bottom[0]->count();
  cuda::absval_forward(*ctx.cuda(), n, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void AbsValLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (n), as at forward
  cuda::absval_backward(*ctx.cuda(), n, x, top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("AbsVal", AbsValLayer);

}  // namespace crema
