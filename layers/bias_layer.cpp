#include "layers/bias_layer.hpp"

#include "engine/math.hpp"
#include "layers/param_blobs.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

namespace {
AxisOperandParams parse_bias_params(MapReader r) {
  AxisOperandParams p = AxisOperandParams::parse(r, "filler", 0.f);
  r.finish();
  return p;
}
}  // namespace

BiasLayer::BiasLayer(const LayerSpec& spec) : Layer(spec), params_(parse_bias_params(spec.params("bias_param"))) {}

void BiasLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  if (bottom.size() > 1) return;  // the bias is bottom 1
  setup_param_blobs(spec_, blobs_,
                    {{"bias", AxisBroadcast::param_shape(spec_, *bottom[0], params_.axis, params_.num_axes),
                      params_.filler}},
                    ctx.rng());
}

void BiasLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const bool from_bottom = bottom.size() > 1;
  broadcast_ = AxisBroadcast::of(spec_, *bottom[0], from_bottom ? *bottom[1] : *blobs_[0], params_.axis,
                                 from_bottom ? "the bias (bottom 1)" : "the bias blob");
  if (top[0] != bottom[0]) top[0]->reshape_like(*bottom[0]);
}

void BiasLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* b = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->cpu_data();  // b: (dim)
  // x, y: (outer, dim, inner); y may alias x
  broadcast_.apply(bottom[0]->cpu_data(), nullptr, b, top[0]->mutable_cpu_data());
}

void BiasLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();  // dy: (outer, dim, inner)
  if (bottom.size() > 1 && propagate_down[1])
    broadcast_.reduce(dy, nullptr, bottom[1]->mutable_cpu_diff(), false);  // db: (dim)
  if (bottom.size() == 1 && param_propagate_down(0))
    broadcast_.reduce(dy, nullptr, blobs_[0]->mutable_cpu_diff(), true);  // db: (dim), accumulates
  // In place, the bottom's gradient already is the top's.
  if (propagate_down[0] && top[0] != bottom[0]) cpu_copy(top[0]->count(), dy, bottom[0]->mutable_cpu_diff());
}

#ifdef CREMA_WITH_CUDA
void BiasLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const float* b = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->gpu_data();  // b: (dim)
  // x, y: (outer, dim, inner); y may alias x
  cuda::broadcast_apply_gpu(*ctx.cuda(), broadcast_.outer, broadcast_.dim, broadcast_.inner, bottom[0]->gpu_data(),
                            nullptr, b, top[0]->mutable_gpu_data());
}

void BiasLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  const AxisBroadcast& v = broadcast_;
  const float* dy = top[0]->gpu_diff();  // dy: (outer, dim, inner)
  if (bottom.size() > 1 && propagate_down[1])
    cuda::broadcast_reduce_gpu(c, v.outer, v.dim, v.inner, dy, nullptr, bottom[1]->mutable_gpu_diff(), false);
  if (bottom.size() == 1 && param_propagate_down(0))  // db: (dim), accumulates
    cuda::broadcast_reduce_gpu(c, v.outer, v.dim, v.inner, dy, nullptr, blobs_[0]->mutable_gpu_diff(), true);
  // In place, the bottom's gradient already is the top's.
  if (propagate_down[0] && top[0] != bottom[0]) cuda::gpu_copy(c, top[0]->count(), dy, bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Bias", BiasLayer);

}  // namespace crema
