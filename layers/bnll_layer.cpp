#include "layers/bnll_layer.hpp"

#include <algorithm>
#include <cmath>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

namespace {
// Beyond this, e^x / (1 + e^x) is 1 in float and e^x would soon overflow.
constexpr float kBNLLThreshold = 50.f;
}  // namespace

void BNLLLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  input_.forward(*bottom[0], *top[0], [](float x) {
    return x > 0.f ? x + std::log(1.f + std::exp(-x)) : std::log(1.f + std::exp(x));
  });
}

void BNLLLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  input_.backward(*top[0], *bottom[0], [](float x) {
    const float e = std::exp(std::min(x, kBNLLThreshold));
    return e / (e + 1.f);
  });
}

#ifdef CREMA_WITH_CUDA
void BNLLLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  const int64_t n = bottom[0]->count();
  cuda::bnll_forward(*ctx.cuda(), n, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void BNLLLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (n), as at forward
  cuda::bnll_backward(*ctx.cuda(), n, kBNLLThreshold, x, top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("BNLL", BNLLLayer);

}  // namespace crema
