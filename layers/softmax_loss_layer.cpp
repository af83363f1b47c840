#include "layers/softmax_loss_layer.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/error.hpp"
#include "layers/cuda/loss_kernels.hpp"
#include "layers/gpu_labels.hpp"
#endif

namespace crema {

SoftmaxWithLossLayer::SoftmaxWithLossLayer(const LayerSpec& spec)
    : LossLayer(spec),
      softmax_params_(SoftmaxParams::parse(spec.params("softmax_param"))),
      loss_params_(LossParams::parse(spec.params("loss_param"))) {}

void SoftmaxWithLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  const int axis = class_axis(spec_, bottom, softmax_params_.axis);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  if (outer_ * inner_ != bottom[1]->count())
    spec_.fail("number of labels must match number of predictions; with scores of shape " +
               bottom[0]->shape_string() + " and softmax axis " + std::to_string(axis) + " there must be " +
               std::to_string(outer_ * inner_) + " labels, with integer values in [0, " + std::to_string(channels_) +
               "), but the label blob has shape " + bottom[1]->shape_string());
  prob_.reshape_like(*bottom[0]);
  loss_stats_.reshape({3});
  if (top.size() >= 2) {
    top[1]->reshape_like(*bottom[0]);
    top[1]->share_data(prob_);
  }
}

void SoftmaxWithLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  softmax_cpu(outer_, channels_, inner_, bottom[0]->cpu_data(), prob_.mutable_cpu_data());
  const float* prob = prob_.cpu_data();        // prob: (outer, C, inner)
  const float* label = bottom[1]->cpu_data();  // label: (outer, inner)
  double loss = 0;
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const auto l = read_label(*this, label[o * inner_ + i], channels_, loss_params_.ignore_label);
      if (!l) continue;
      const float p = prob[(static_cast<size_t>(o) * channels_ + static_cast<size_t>(*l)) * inner_ + i];
      loss -= std::log(std::max(p, FLT_MIN));
      ++valid;
    }
  }
  top[0]->mutable_cpu_data()[0] =
      static_cast<float>(loss) / loss_normalizer(loss_params_.normalization, outer_, inner_, valid);
}

void SoftmaxWithLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  // Labels have no gradient; Caffe aborts when asked for one, crema leaves it untouched.
  if (!propagate_down[0]) return;
  const float* label = bottom[1]->cpu_data();  // label: (outer, inner)
  float* dx = bottom[0]->mutable_cpu_diff();   // dx: (outer, C, inner)
  cpu_copy(prob_.count(), prob_.cpu_data(), dx);
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    float* dxo = dx + static_cast<size_t>(o) * channels_ * inner_;  // dxo: (C, inner)
    for (int i = 0; i < inner_; ++i) {
      const auto l = read_label(*this, label[o * inner_ + i], channels_, loss_params_.ignore_label);
      if (!l) {
        for (int c = 0; c < channels_; ++c) dxo[c * inner_ + i] = 0.f;
        continue;
      }
      dxo[*l * inner_ + i] -= 1.f;
      ++valid;
    }
  }
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top[0]->cpu_diff()[0] / loss_normalizer(loss_params_.normalization, outer_, inner_, valid);
  cpu_scale(prob_.count(), scale, dx);
}

#ifdef CREMA_WITH_CUDA
namespace {
cuda::LabelRule label_rule(const LossParams& p) {
  return {p.ignore_label.has_value(), p.ignore_label.value_or(0), static_cast<int>(p.normalization)};
}
}  // namespace

void SoftmaxWithLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  // prob: (outer, C, inner)
  cuda::softmax_forward_gpu(c, outer_, channels_, inner_, bottom[0]->gpu_data(), prob_.mutable_gpu_data());
  // label: (outer, inner); the loss (1) and loss_stats_ (3) are written on the device.
  const cuda::LabelCheck check =
      cuda::softmax_loss_forward_gpu(c, outer_, channels_, inner_, prob_.gpu_data(), bottom[1]->gpu_data(),
                                     label_rule(loss_params_), top[0]->mutable_gpu_data(), loss_stats_.mutable_gpu_data());
  if (check.bad > 0.f) {  // find the first bad label, the one the CPU names (loss_stats_ is scratch now)
    check_labels_gpu(*this, c, outer_ * inner_, bottom[1]->gpu_data(), channels_, loss_params_.ignore_label,
                     loss_stats_.mutable_gpu_data());
    throw Error(std::string(type()) + " layer '" + name() + "': a label is out of range");  // never a silent pass
  }
}

void SoftmaxWithLossLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // prob, dx: (outer, C, inner); label: (outer, inner); the valid count and the
  // top's diff (the loss weight) are read on the device.
  cuda::softmax_loss_backward_gpu(*ctx.cuda(), outer_, channels_, inner_, prob_.gpu_data(), bottom[1]->gpu_data(),
                                  label_rule(loss_params_), loss_stats_.gpu_data(), top[0]->gpu_diff(),
                                  bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("SoftmaxWithLoss", SoftmaxWithLossLayer);

}  // namespace crema
