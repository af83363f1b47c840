#include "layers/infogain_loss_layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/caffe_binary.hpp"
#include "layers/multinomial_logistic_loss_layer.hpp"
#include "layers/softmax_layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/loss_kernels.hpp"
#include "layers/gpu_labels.hpp"
#endif

namespace crema {

InfogainLossParams InfogainLossParams::parse(MapReader r) {
  InfogainLossParams p;
  p.source = r.get_string("source", "");
  p.axis = r.get_int("axis", 1);
  r.finish();
  return p;
}

namespace {

LossParams parse_loss_params(const LayerSpec& spec) {
  MapReader r = spec.params("loss_param");
  if (r.has("normalize"))
    r.fail("normalize", "is deprecated and InfogainLoss does not accept it; use normalization "
                        "(VALID, BATCH_SIZE, FULL or NONE)");
  return LossParams::parse(r);
}

}  // namespace

InfogainLossLayer::InfogainLossLayer(const LayerSpec& spec)
    : LossLayer(spec),
      params_(InfogainLossParams::parse(spec.params("infogain_loss_param"))),
      loss_params_(parse_loss_params(spec)) {}

void InfogainLossLayer::layer_setup(Context&, const BlobVec& bottom, const BlobVec&) {
  if (bottom.size() == 3) return;
  if (params_.source.empty())
    spec_.fail("InfogainLoss needs its matrix H: set infogain_loss_param.source to a .binaryproto file, "
               "or give H as a third bottom");
  try {
    infogain_ = io::read_binaryproto(params_.source);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw Error("InfogainLoss layer '" + name() + "' (infogain_loss_param.source): " + e.what());
  }
}

const float* InfogainLossLayer::infogain(const BlobVec& bottom) const {
  return infogain_blob(bottom).cpu_data();
}

void InfogainLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  const int axis = class_axis(spec_, bottom, params_.axis);
  outer_ = bottom[0]->count(0, axis);
  num_labels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  if (outer_ * inner_ != bottom[1]->count())
    spec_.fail("number of labels must match number of predictions: scores of shape " + bottom[0]->shape_string() +
               " with infogain axis " + std::to_string(axis) + " need " + std::to_string(outer_ * inner_) +
               " labels, but the label blob has shape " + bottom[1]->shape_string());
  const Blob& h = infogain_blob(bottom);
  if (h.count() != num_labels_ * num_labels_)
    spec_.fail("the infogain matrix H must be " + std::to_string(num_labels_) + " x " + std::to_string(num_labels_) +
               " for " + std::to_string(num_labels_) + " classes, but " +
               (bottom.size() == 3 ? "the third bottom" : "'" + params_.source + "'") + " holds " +
               std::to_string(h.count()) + " values (shape " + h.shape_string() + ")");
  prob_.reshape_like(*bottom[0]);
  label_check_.reshape({2});
  normalizer_.reshape({1});
  row_sums_.reshape({num_labels_});
  if (top.size() >= 2) {
    top[1]->reshape_like(*bottom[0]);
    top[1]->share_data(prob_);
  }
}

void InfogainLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  softmax_cpu(outer_, num_labels_, inner_, bottom[0]->cpu_data(), prob_.mutable_cpu_data());
  const float* prob = prob_.cpu_data();        // prob: (outer, K, inner)
  const float* label = bottom[1]->cpu_data();  // label: (outer, inner)
  const float* h = infogain(bottom);           // h: (K, K)
  double loss = 0;
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    const float* po = prob + static_cast<size_t>(o) * num_labels_ * inner_;  // po: (K, inner)
    for (int i = 0; i < inner_; ++i) {
      const auto l = read_label(*this, label[o * inner_ + i], num_labels_, loss_params_.ignore_label);
      if (!l) continue;
      const float* row = h + static_cast<size_t>(*l) * num_labels_;  // row: (K)
      for (int k = 0; k < num_labels_; ++k) loss -= row[k] * std::log(std::max(po[k * inner_ + i], kLogThreshold));
      ++valid;
    }
  }
  top[0]->mutable_cpu_data()[0] =
      static_cast<float>(loss) / loss_normalizer(loss_params_.normalization, outer_, inner_, valid);
}

void InfogainLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  // Labels and H have no gradient; Caffe aborts when asked for one, crema leaves them untouched.
  if (!propagate_down[0]) return;
  const float* prob = prob_.cpu_data();        // prob: (outer, K, inner)
  const float* label = bottom[1]->cpu_data();  // label: (outer, inner)
  const float* h = infogain(bottom);           // h: (K, K)
  float* dx = bottom[0]->mutable_cpu_diff();   // dx: (outer, K, inner)
  std::vector<float> row_sums(static_cast<size_t>(num_labels_));
  for (int r = 0; r < num_labels_; ++r) {
    double sum = 0;
    for (int k = 0; k < num_labels_; ++k) sum += h[static_cast<size_t>(r) * num_labels_ + static_cast<size_t>(k)];
    row_sums[static_cast<size_t>(r)] = static_cast<float>(sum);
  }
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    const size_t base = static_cast<size_t>(o) * num_labels_ * inner_;
    for (int i = 0; i < inner_; ++i) {
      const auto l = read_label(*this, label[o * inner_ + i], num_labels_, loss_params_.ignore_label);
      const float* row = l ? h + static_cast<size_t>(*l) * num_labels_ : nullptr;  // row: (K)
      for (int k = 0; k < num_labels_; ++k) {
        const size_t at = base + static_cast<size_t>(k) * inner_ + static_cast<size_t>(i);
        dx[at] = row ? prob[at] * row_sums[static_cast<size_t>(*l)] - row[k] : 0.f;
      }
      if (l) ++valid;
    }
  }
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = top[0]->cpu_diff()[0] / loss_normalizer(loss_params_.normalization, outer_, inner_, valid);
  cpu_scale(bottom[0]->count(), scale, dx);
}

#ifdef CREMA_WITH_CUDA
namespace {
// The labels' rule for the device: the ignore_label, and the normalizer unless it
// depends on how many labels count (VALID, found on the device).
cuda::TargetRule target_rule(const LossParams& p, int outer, int inner) {
  cuda::TargetRule rule;
  rule.has_ignore = p.ignore_label.has_value();
  rule.ignore_label = p.ignore_label.value_or(0);
  rule.by_valid = p.normalization == LossNormalization::VALID;
  rule.fixed_normalizer = loss_normalizer(p.normalization, outer, inner, 0);
  return rule;
}
}  // namespace

void InfogainLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  // prob: (outer, K, inner)
  cuda::softmax_forward_gpu(c, outer_, num_labels_, inner_, bottom[0]->gpu_data(), prob_.mutable_gpu_data());
  // label: (outer, inner), checked on the device (waits for the stream).
  check_labels_gpu(*this, c, outer_ * inner_, bottom[1]->gpu_data(), num_labels_, loss_params_.ignore_label,
                   label_check_.mutable_gpu_data());
  // h: (K, K); the loss (1) and the normalizer (1) are written on the device.
  cuda::infogain_forward(c, outer_, num_labels_, inner_, kLogThreshold, prob_.gpu_data(), bottom[1]->gpu_data(),
                         infogain_blob(bottom).gpu_data(), target_rule(loss_params_, outer_, inner_),
                         top[0]->mutable_gpu_data(), normalizer_.mutable_gpu_data());
}

void InfogainLossLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const cuda::CudaContext& c = *ctx.cuda();
  const float* h = infogain_blob(bottom).gpu_data();  // h: (K, K)
  cuda::infogain_row_sums(c, num_labels_, h, row_sums_.mutable_gpu_data());
  // prob, dx: (outer, K, inner); label: (outer, inner), checked by forward; the loss
  // weight (top diff) and forward's normalizer are read on the device.
  cuda::infogain_backward(c, outer_, num_labels_, inner_, prob_.gpu_data(), bottom[1]->gpu_data(), h,
                          row_sums_.gpu_data(), target_rule(loss_params_, outer_, inner_), top[0]->gpu_diff(),
                          normalizer_.gpu_data(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("InfogainLoss", InfogainLossLayer);

}  // namespace crema
