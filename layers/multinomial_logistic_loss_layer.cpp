#include "layers/multinomial_logistic_loss_layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#ifdef CREMA_WITH_CUDA
#include "engine/error.hpp"
#include "layers/cuda/misc_kernels.hpp"
#endif

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
  label_check_.reshape({3});
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

#ifdef CREMA_WITH_CUDA
void MultinomialLogisticLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  // label: (N); checked on the device, only the verdict comes back (waits for the stream).
  const cuda::BadIndex bad =
      cuda::find_bad_index(c, num, bottom[1]->gpu_data(), dim, cuda::IndexRule::label, label_check_.mutable_gpu_data());
  if (bad.position >= 0) {
    read_label(*this, bad.value, dim, std::nullopt);  // throws the CPU's message
    throw Error(std::string(type()) + " layer '" + name() + "': a label is out of range");
  }
  // p: (N, dim); the loss (1) is written on the device.
  cuda::multinomial_logistic_forward(c, num, dim, kLogThreshold, bottom[0]->gpu_data(), bottom[1]->gpu_data(),
                                     top[0]->mutable_gpu_data());
}

void MultinomialLogisticLossLayer::backward_gpu(Context& ctx, const BlobVec& top,
                                                const std::vector<bool>& propagate_down, const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // p, dp: (N, dim); label: (N), checked by forward; the loss weight (top diff) is read on the device.
  cuda::multinomial_logistic_backward(*ctx.cuda(), bottom[0]->shape(0), bottom[0]->count(1), kLogThreshold,
                                      bottom[0]->gpu_data(), bottom[1]->gpu_data(), top[0]->gpu_diff(),
                                      bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("MultinomialLogisticLoss", MultinomialLogisticLossLayer);

}  // namespace crema
