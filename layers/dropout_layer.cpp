#include "layers/dropout_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <string>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

DropoutParams DropoutParams::parse(MapReader r) {
  DropoutParams p;
  p.dropout_ratio = r.get_float("dropout_ratio", 0.5f);
  p.scale_train = r.get_bool("scale_train", true);
  r.finish();
  // p = 1 would drop everything and make the scale 1 / 0.
  if (!(p.dropout_ratio >= 0.f && p.dropout_ratio < 1.f))
    r.fail("dropout_ratio", "must be in [0, 1), got " + fmt::format("{}", p.dropout_ratio));
  return p;
}

DropoutLayer::DropoutLayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(DropoutParams::parse(spec.params("dropout_param"))) {}

float DropoutLayer::train_scale() const {
  return params_.scale_train ? 1.f / (1.f - params_.dropout_ratio) : 1.f;
}

float DropoutLayer::test_scale() const { return params_.scale_train ? 1.f : 1.f - params_.dropout_ratio; }

void DropoutLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::reshape(bottom, top);
  mask_.resize(static_cast<size_t>(bottom[0]->count()));
}

void DropoutLayer::forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (n)
  float* y = top[0]->mutable_cpu_data();   // y: (n), may alias x
  if (spec_.phase == Phase::TRAIN) {
    const float keep = 1.f - params_.dropout_ratio;
    const float scale = train_scale();
    unsigned char* mask = mask_.data();  // mask: (n)
    for (int i = 0; i < n; ++i) {
      mask[i] = ctx.rng().bernoulli(keep) ? 1 : 0;
      // Multiplied rather than selected, so a NaN or Inf input stays visible as in Caffe.
      y[i] = x[i] * static_cast<float>(mask[i]) * scale;
    }
  } else {
    const float scale = test_scale();
    for (int i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void DropoutLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* dy = top[0]->cpu_diff();       // dy: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n), may alias dy
  if (spec_.phase == Phase::TRAIN) {
    const float scale = train_scale();
    const unsigned char* mask = mask_.data();  // mask: (n)
    for (int i = 0; i < n; ++i) dx[i] = dy[i] * static_cast<float>(mask[i]) * scale;
  } else {
    const float scale = test_scale();
    for (int i = 0; i < n; ++i) dx[i] = dy[i] * scale;
  }
}

#ifdef CREMA_WITH_CUDA
void DropoutLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const int64_t n = bottom[0]->count();
  if (spec_.phase == Phase::TRAIN) {
    // A fresh seed from the context's stream per forward; backward redraws the same
    // mask from it (see neuron_kernels.hpp), so no mask is stored on the device.
    gpu_seed_ = ctx.rng().next_u64();
    cuda::dropout_forward(*ctx.cuda(), n, gpu_seed_, 1.f - params_.dropout_ratio, train_scale(),
                          bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
  } else {
    // keep = 1 keeps every element: y = x test_scale.
    cuda::dropout_forward(*ctx.cuda(), n, 0, 1.f, test_scale(), bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
  }
}

void DropoutLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  const bool train = spec_.phase == Phase::TRAIN;
  cuda::dropout_backward(*ctx.cuda(), n, gpu_seed_, train ? 1.f - params_.dropout_ratio : 1.f,
                         train ? train_scale() : test_scale(), top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Dropout", DropoutLayer);

}  // namespace crema
