#include "layers/sigmoid_cross_entropy_loss_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <cmath>

#include "engine/math.hpp"
#include "layers/sigmoid_function.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/misc_kernels.hpp"
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

namespace {

LossParams parse_loss_params(const LayerSpec& spec) {
  MapReader r = spec.params("loss_param");
  const bool explicit_mode = r.has("normalization") || r.has("normalize");
  LossParams p = LossParams::parse(r);
  if (!explicit_mode) p.normalization = LossNormalization::BATCH_SIZE;
  return p;
}

}  // namespace

SigmoidCrossEntropyLossLayer::SigmoidCrossEntropyLossLayer(const LayerSpec& spec)
    : LossLayer(spec), loss_params_(parse_loss_params(spec)) {}

void SigmoidCrossEntropyLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  if (bottom[0]->count() != bottom[1]->count())
    spec_.fail("SigmoidCrossEntropyLoss needs one target per score; got scores of shape " +
               bottom[0]->shape_string() + " and targets of shape " + bottom[1]->shape_string());
  sigmoid_.reshape_like(*bottom[0]);
  device_normalizer_.reshape({1});
  scratch_.reshape({2});
}

void SigmoidCrossEntropyLossLayer::refuse_target(int64_t position, float value) const {
  throw Error(fmt::format(
      "SigmoidCrossEntropyLoss layer '{}': the target at position {} of the batch is {}; targets are probabilities in "
      "[0, 1] (a mask saved as 0 and 255 needs scaling by 1/255, e.g. transform_param scale: 0.00392156862745098{})",
      name(), position, value,
      loss_params_.ignore_label ? "" : "; loss_param ignore_label skips the elements of one value"));
}

bool SigmoidCrossEntropyLossLayer::ignored(float target) const {
  return loss_params_.ignore_label && static_cast<int>(target) == *loss_params_.ignore_label;
}

void SigmoidCrossEntropyLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();  // x: (N, ...)
  const float* t = bottom[1]->cpu_data();  // t: (n) targets
  float* p = sigmoid_.mutable_cpu_data();  // p: (N, ...)
  double loss = 0;
  int valid = 0;
  for (int i = 0; i < n; ++i) {
    // The range test comes first: ignored() compares the target as an integer label. A refusal
    // throws before the top is written.
    if (!(std::fabs(t[i]) < 2147483520.f) || (!ignored(t[i]) && !(t[i] >= 0.f && t[i] <= 1.f))) refuse_target(i, t[i]);
    p[i] = sigmoid(x[i]);
    if (ignored(t[i])) continue;
    const float positive = x[i] >= 0.f ? 1.f : 0.f;
    loss -= x[i] * (t[i] - positive) - std::log(1.f + std::exp(x[i] - 2.f * x[i] * positive));
    ++valid;
  }
  normalizer_ = loss_normalizer(loss_params_.normalization, bottom[0]->shape(0), bottom[0]->count(1), valid);
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss) / normalizer_;
}

void SigmoidCrossEntropyLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  // Targets have no gradient; Caffe aborts when asked for one, crema leaves it untouched.
  if (!propagate_down[0]) return;
  const int n = bottom[0]->count();
  const float* p = sigmoid_.cpu_data();       // p: (N, ...)
  const float* t = bottom[1]->cpu_data();     // t: (n)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N, ...)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top[0]->cpu_diff()[0] / normalizer_;
  for (int i = 0; i < n; ++i) dx[i] = ignored(t[i]) ? 0.f : scale * (p[i] - t[i]);
}

#ifdef CREMA_WITH_CUDA
cuda::TargetRule SigmoidCrossEntropyLossLayer::target_rule(const Blob& scores) const {
  cuda::TargetRule rule;
  rule.has_ignore = loss_params_.ignore_label.has_value();
  rule.ignore_label = loss_params_.ignore_label.value_or(0);
  // Only VALID depends on what the targets say; the other modes are known here.
  rule.by_valid = loss_params_.normalization == LossNormalization::VALID;
  rule.fixed_normalizer = loss_normalizer(loss_params_.normalization, scores.shape(0), scores.count(1), 0);
  return rule;
}

void SigmoidCrossEntropyLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int n = bottom[0]->count();
  // The targets stay on the device; only the verdict on the first bad one comes back.
  const cuda::BadIndex bad =
      cuda::find_bad_probability(c, n, bottom[1]->gpu_data(), target_rule(*bottom[0]), scratch_.mutable_gpu_data());
  if (bad.position >= 0) refuse_target(bad.position, bad.value);
  // x, p: (N, ...); t: (n); the loss (1) and the normalizer (1) are written on the device.
  cuda::sigmoid_forward(c, n, bottom[0]->gpu_data(), sigmoid_.mutable_gpu_data());
  cuda::sigmoid_cross_entropy_forward(c, n, bottom[0]->gpu_data(), bottom[1]->gpu_data(), target_rule(*bottom[0]),
                                      top[0]->mutable_gpu_data(), device_normalizer_.mutable_gpu_data());
}

void SigmoidCrossEntropyLossLayer::backward_gpu(Context& ctx, const BlobVec& top,
                                                const std::vector<bool>& propagate_down, const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // p, t, dx: (n); the loss weight (top diff) and the normalizer are read on the device.
  cuda::sigmoid_cross_entropy_backward(*ctx.cuda(), bottom[0]->count(), sigmoid_.gpu_data(), bottom[1]->gpu_data(),
                                       target_rule(*bottom[0]), top[0]->gpu_diff(), device_normalizer_.gpu_data(),
                                       bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("SigmoidCrossEntropyLoss", SigmoidCrossEntropyLossLayer);

}  // namespace crema
