#include "layers/silence_layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

namespace crema {

void SilenceLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate_down[i]) bottom[i]->set_diff(0.f);
}

#ifdef CREMA_WITH_CUDA
void SilenceLayer::forward_gpu(Context&, const BlobVec&, const BlobVec&) {}

void SilenceLayer::backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate_down[i]) cuda::gpu_set(*ctx.cuda(), bottom[i]->count(), 0.f, bottom[i]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Silence", SilenceLayer);

}  // namespace crema
