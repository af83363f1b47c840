#include "layers/mvn_layer.hpp"

#include <cmath>
#include <string>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/catalog_kernels.hpp"
#endif

namespace crema {

MVNParams MVNParams::parse(MapReader r) {
  MVNParams p;
  p.normalize_variance = r.get_bool("normalize_variance", true);
  p.across_channels = r.get_bool("across_channels", false);
  p.eps = r.get_float("eps", 1e-9f);
  if (p.eps < 0.f) r.fail("eps", "eps must not be negative");
  r.finish();
  return p;
}

MVNLayer::MVNLayer(const LayerSpec& spec) : NeuronLayer(spec), params_(MVNParams::parse(spec.params("mvn_param"))) {}

void MVNLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (x.num_axes() < 1) spec_.fail("MVN needs a bottom with at least one axis (N, ...), got a scalar");
  // Caffe's legacy channels(): 1 for a 1-D bottom.
  const int channels = x.num_axes() > 1 ? x.shape(1) : 1;
  layout_.outer = 1;
  layout_.dim = params_.across_channels ? x.shape(0) : x.shape(0) * channels;
  layout_.inner = layout_.dim > 0 ? x.count() / layout_.dim : 0;
  inv_std_.assign(static_cast<size_t>(layout_.dim), 1.f);
  gpu_inv_std_.reshape({layout_.dim});
  NeuronLayer::reshape(bottom, top);
}

void MVNLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const size_t groups = static_cast<size_t>(layout_.dim);
  const float* x = bottom[0]->cpu_data();  // x: (groups, group size)
  std::vector<double> mean(groups), var(groups);
  layout_.moments(x, mean.data(), var.data());
  if (params_.normalize_variance)
    for (size_t g = 0; g < groups; ++g)
      inv_std_[g] = static_cast<float>(1.0 / (std::sqrt(var[g]) + static_cast<double>(params_.eps)));
  layout_.normalize(x, mean.data(), inv_std_.data(), top[0]->mutable_cpu_data());  // y may alias x
}

void MVNLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // y, dy, dx: (groups, group size); dx may alias dy. Without the variance step
  // the gradient is dy - mean(dy).
  const bool scaled = params_.normalize_variance;
  layout_.normalize_backward(scaled ? top[0]->cpu_data() : nullptr, top[0]->cpu_diff(),
                             scaled ? inv_std_.data() : nullptr, bottom[0]->mutable_cpu_diff());
}

#ifdef CREMA_WITH_CUDA
void MVNLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x, y: (groups, group size), y may alias x; inv_std: (groups)
  cuda::mvn_forward(*ctx.cuda(), layout_.dim, layout_.inner, params_.normalize_variance, params_.eps,
                    bottom[0]->gpu_data(), top[0]->mutable_gpu_data(), gpu_inv_std_.mutable_gpu_data());
}

void MVNLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // y, dy, dx: (groups, group size); dx may alias dy. Without the variance step the
  // gradient is dy - mean(dy).
  const bool scaled = params_.normalize_variance;
  cuda::mvn_backward(*ctx.cuda(), layout_.dim, layout_.inner, scaled ? top[0]->gpu_data() : nullptr,
                     top[0]->gpu_diff(), scaled ? gpu_inv_std_.gpu_data() : nullptr, bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("MVN", MVNLayer);

}  // namespace crema
