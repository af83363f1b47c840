#include "layers/sigmoid_layer.hpp"

#include "layers/elementwise_map.hpp"
#include "layers/sigmoid_function.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

SigmoidLayer::SigmoidLayer(const LayerSpec& spec)
    : ActivationLayer(spec, "sigmoid_param", parse_engine_only(spec, "sigmoid_param"), {onednn::EltwiseOp::Kind::logistic}) {}

void SigmoidLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (forward_onednn(bottom, top)) return;
  map_forward(*bottom[0], *top[0], [](float x) { return sigmoid(x); });
}

void SigmoidLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0] || backward_onednn(top, bottom)) return;
  // The derivative is a function of the output, so it works in place.
  map_backward(top[0]->cpu_data(), *top[0], *bottom[0], [](float y) { return y * (1.f - y); });
}

#ifdef CREMA_WITH_CUDA
void SigmoidLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::sigmoid_forward(*ctx.cuda(), n, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void SigmoidLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  cuda::sigmoid_backward(*ctx.cuda(), n, top[0]->gpu_data(), top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Sigmoid", SigmoidLayer);

}  // namespace crema
