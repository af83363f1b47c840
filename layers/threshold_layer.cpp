#include "layers/threshold_layer.hpp"

#include "layers/elementwise_map.hpp"

#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ThresholdParams ThresholdParams::parse(MapReader r) {
  ThresholdParams p;
  p.threshold = r.get_float("threshold", 0.f);
  r.finish();
  return p;
}

ThresholdLayer::ThresholdLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(ThresholdParams::parse(spec.params("threshold_param"))) {}

void ThresholdLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float threshold = params_.threshold;
  map_forward(*bottom[0], *top[0], [=](float x) { return x > threshold ? 1.f : 0.f; });
}

void ThresholdLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[0]) bottom[0]->set_diff(0.f);
}

#ifdef CREMA_WITH_CUDA
void ThresholdLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  cuda::threshold_forward(*ctx.cuda(), n, params_.threshold, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ThresholdLayer::backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[0]) cuda::gpu_set(*ctx.cuda(), bottom[0]->count(), 0.f, bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Threshold", ThresholdLayer);

}  // namespace crema
