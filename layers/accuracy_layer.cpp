#include "layers/accuracy_layer.hpp"

#include <string>
#include <vector>

#include "layers/loss_layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/error.hpp"
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/loss_kernels.hpp"
#include "layers/gpu_labels.hpp"
#endif

namespace crema {

AccuracyParams AccuracyParams::parse(MapReader r) {
  AccuracyParams p;
  p.top_k = r.get_int("top_k", 1);
  p.axis = r.get_int("axis", 1);
  if (r.has("ignore_label")) p.ignore_label = r.get_int("ignore_label", 0);
  r.finish();
  if (p.top_k < 1) r.fail("top_k", "must be at least 1, got " + std::to_string(p.top_k));
  return p;
}

AccuracyLayer::AccuracyLayer(const LayerSpec& spec)
    : Layer(spec), params_(AccuracyParams::parse(spec.params("accuracy_param"))) {}

void AccuracyLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const int axis = class_axis(spec_, bottom, params_.axis);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  if (params_.top_k > channels_)
    spec_.fail("accuracy_param.top_k (" + std::to_string(params_.top_k) +
               ") must be less than or equal to the number of classes (" + std::to_string(channels_) + ")");
  if (outer_ * inner_ != bottom[1]->count())
    spec_.fail("number of labels must match number of predictions; with scores of shape " +
               bottom[0]->shape_string() + " and axis " + std::to_string(axis) + " there must be " +
               std::to_string(outer_ * inner_) + " labels, but the label blob has shape " +
               bottom[1]->shape_string());
  top[0]->reshape({});
  if (top.size() > 1) top[1]->reshape({channels_});
}

void AccuracyLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* score = bottom[0]->cpu_data();  // score: (outer, C, inner)
  const float* label = bottom[1]->cpu_data();  // label: (outer, inner)
  const int k_max = params_.top_k;
  // Per class: labelled positions and correctly classified ones.
  std::vector<int> class_total(static_cast<size_t>(channels_), 0), class_correct(static_cast<size_t>(channels_), 0);
  int correct = 0, counted = 0;
  for (int o = 0; o < outer_; ++o) {
    const float* so = score + static_cast<size_t>(o) * channels_ * inner_;  // so: (C, inner)
    for (int i = 0; i < inner_; ++i) {
      const auto l = read_label(*this, label[o * inner_ + i], channels_, params_.ignore_label);
      if (!l) continue;
      const float true_score = so[*l * inner_ + i];
      // The true class itself counts once, hence -1; stop as soon as k are found.
      int num_better = -1;
      for (int c = 0; c < channels_ && num_better < k_max; ++c) num_better += so[c * inner_ + i] >= true_score;
      ++class_total[static_cast<size_t>(*l)];
      if (num_better < k_max) {
        ++correct;
        ++class_correct[static_cast<size_t>(*l)];
      }
      ++counted;
    }
  }
  top[0]->mutable_cpu_data()[0] = counted == 0 ? 0.f : static_cast<float>(correct) / static_cast<float>(counted);
  if (top.size() > 1) {
    float* per_class = top[1]->mutable_cpu_data();  // per_class: (C)
    for (size_t c = 0; c < class_total.size(); ++c)
      per_class[c] = class_total[c] == 0 ? 0.f : static_cast<float>(class_correct[c]) / static_cast<float>(class_total[c]);
  }
}

void AccuracyLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  // Accuracy is piecewise constant. Caffe aborts if asked for a gradient; writing the
  // true (zero) gradient instead keeps a Split that feeds both this layer and a loss
  // from adding stale values into the scores' gradient.
  for (size_t b = 0; b < bottom.size(); ++b)
    if (propagate_down[b]) bottom[b]->set_diff(0.f);
}

#ifdef CREMA_WITH_CUDA
void AccuracyLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  counts_.reshape({cuda::accuracy_scratch_size(channels_)});
  const cuda::LabelRule rule{params_.ignore_label.has_value(), params_.ignore_label.value_or(0), 0};
  // score: (outer, C, inner); label: (outer, inner); accuracy: (1); per class: (C)
  const cuda::LabelCheck check = cuda::accuracy_forward_gpu(
      c, outer_, channels_, inner_, bottom[0]->gpu_data(), bottom[1]->gpu_data(), params_.top_k, rule,
      counts_.mutable_gpu_data(), top[0]->mutable_gpu_data(), top.size() > 1 ? top[1]->mutable_gpu_data() : nullptr);
  if (check.bad > 0.f) {  // find the first bad label, the one the CPU names (counts_ is scratch now)
    check_labels_gpu(*this, c, outer_ * inner_, bottom[1]->gpu_data(), channels_, params_.ignore_label,
                     counts_.mutable_gpu_data());
    throw Error(std::string(type()) + " layer '" + name() + "': a label is out of range");  // never a silent pass
  }
}

void AccuracyLayer::backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  // The true (zero) gradient, as on the CPU.
  for (size_t b = 0; b < bottom.size(); ++b)
    if (propagate_down[b]) cuda::gpu_set(*ctx.cuda(), bottom[b]->count(), 0.f, bottom[b]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Accuracy", AccuracyLayer);

}  // namespace crema
