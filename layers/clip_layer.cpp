#include "layers/clip_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <string>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

ClipParams ClipParams::parse(MapReader r) {
  ClipParams p;
  r.allow({"min", "max"});  // a missing min is not blamed on the max beside it
  p.min = r.required("min").as_float();
  p.max = r.required("max").as_float();
  r.finish();
  // Caffe accepts min > max and then outputs min everywhere; that is never meant.
  if (p.min > p.max)
    r.fail("max", "must not be below min (" + fmt::format("{}", p.min) + "), got " + fmt::format("{}", p.max));
  return p;
}

ClipLayer::ClipLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(ClipParams::parse(spec.params("clip_param"))) {}

void ClipLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const ClipParams p = params_;
  input_.forward(*bottom[0], *top[0], [p](float x) { return std::max(p.min, std::min(x, p.max)); });
}

void ClipLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const ClipParams p = params_;
  input_.backward(*top[0], *bottom[0], [p](float x) { return x >= p.min && x <= p.max ? 1.f : 0.f; });
}

#ifdef CREMA_WITH_CUDA
void ClipLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  const int64_t n = bottom[0]->count();
  cuda::clip_forward(*ctx.cuda(), n, params_.min, params_.max, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void ClipLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (n), as at forward
  cuda::clip_backward(*ctx.cuda(), n, params_.min, params_.max, x, top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Clip", ClipLayer);

}  // namespace crema
