#include "layers/multinomial_logistic_loss_layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace crema {

void check_one_label_per_sample(const LayerSpec& spec, const Blob& predictions, const Blob& labels) {
  if (labels.count() != predictions.shape(0))
    spec.fail(spec.type + " needs one label per sample: " + std::to_string(predictions.shape(0)) +
              " values for predictions of shape " + predictions.shape_string() + ", but the label blob has shape " +
              labels.shape_string());
}

void MultinomialLogisticLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  check_one_label_per_sample(spec_, *bottom[0], *bottom[1]);
}

void MultinomialLogisticLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  const float* p = bottom[0]->cpu_data();      // p: (N, dim)
  const float* label = bottom[1]->cpu_data();  // label: (N)
  double loss = 0;
  for (int n = 0; n < num; ++n) {
    const int l = *read_label(*this, label[n], dim, std::nullopt);
    loss -= std::log(std::max(p[static_cast<size_t>(n) * dim + static_cast<size_t>(l)], kLogThreshold));
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss) / static_cast<float>(num);
}

void MultinomialLogisticLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  // Labels have no gradient; Caffe aborts when asked for one, crema leaves it untouched.
  if (!propagate_down[0]) return;
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  const float* p = bottom[0]->cpu_data();      // p: (N, dim)
  const float* label = bottom[1]->cpu_data();  // label: (N)
  bottom[0]->set_diff(0.f);
  float* dp = bottom[0]->mutable_cpu_diff();   // dp: (N, dim)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float scale = -top[0]->cpu_diff()[0] / static_cast<float>(num);
  for (int n = 0; n < num; ++n) {
    const int l = *read_label(*this, label[n], dim, std::nullopt);
    const size_t at = static_cast<size_t>(n) * dim + static_cast<size_t>(l);
    dp[at] = scale / std::max(p[at], kLogThreshold);
  }
}

CREMA_REGISTER_LAYER("MultinomialLogisticLoss", MultinomialLogisticLossLayer);

}  // namespace crema
