#include "layers/hinge_loss_layer.hpp"

#include <algorithm>
#include <optional>

#include "engine/math.hpp"
#include "layers/multinomial_logistic_loss_layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/gpu_labels.hpp"
#endif

namespace crema {

HingeLossParams HingeLossParams::parse(MapReader r) {
  HingeLossParams p;
  p.norm = static_cast<Norm>(r.get_enum("norm", {"L1", "L2"}, 0, 1));
  r.finish();
  return p;
}

HingeLossLayer::HingeLossLayer(const LayerSpec& spec)
    : LossLayer(spec), params_(HingeLossParams::parse(spec.params("hinge_loss_param"))) {}

void HingeLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  check_one_label_per_sample(spec_, *bottom[0], *bottom[1]);
  margins_.reshape_like(*bottom[0]);
  label_check_.reshape({2});
}

void HingeLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  const float* x = bottom[0]->cpu_data();      // x: (N, dim)
  const float* label = bottom[1]->cpu_data();  // label: (N)
  float* m = margins_.mutable_cpu_data();      // m: (N, dim), unsigned margins here
  for (int n = 0; n < num; ++n) {
    const int l = *read_label(*this, label[n], dim, std::nullopt);
    for (int c = 0; c < dim; ++c) {
      const size_t at = static_cast<size_t>(n) * dim + static_cast<size_t>(c);
      m[at] = std::max(0.f, 1.f + (c == l ? -x[at] : x[at]));
    }
  }
  const int count = margins_.count();
  const float sum = params_.norm == HingeLossParams::Norm::L1 ? cpu_asum(count, m) : cpu_dot(count, m, m);
  top[0]->mutable_cpu_data()[0] = sum / static_cast<float>(num);
}

void HingeLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  // Labels have no gradient; Caffe aborts when asked for one, crema leaves it untouched.
  if (!propagate_down[0]) return;
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  const float* label = bottom[1]->cpu_data();  // label: (N)
  const float* m = margins_.cpu_data();        // m: (N, dim)
  float* dx = bottom[0]->mutable_cpu_diff();   // dx: (N, dim)
  // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
  const float w = top[0]->cpu_diff()[0] / static_cast<float>(num);
  const bool l1 = params_.norm == HingeLossParams::Norm::L1;
  for (int n = 0; n < num; ++n) {
    const int l = *read_label(*this, label[n], dim, std::nullopt);
    for (int c = 0; c < dim; ++c) {
      const size_t at = static_cast<size_t>(n) * dim + static_cast<size_t>(c);
      const float sign = c == l ? -1.f : 1.f;
      dx[at] = sign * w * (l1 ? (m[at] > 0.f ? 1.f : 0.f) : 2.f * m[at]);
    }
  }
}

#ifdef CREMA_WITH_CUDA
void HingeLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int num = bottom[0]->shape(0);
  const int dim = bottom[0]->count(1);
  // label: (N), checked on the device (waits for the stream).
  check_labels_gpu(*this, c, num, bottom[1]->gpu_data(), dim, std::nullopt, label_check_.mutable_gpu_data());
  float* m = margins_.mutable_gpu_data();  // m: (N, dim), unsigned margins
  cuda::hinge_margins(c, num, dim, bottom[0]->gpu_data(), bottom[1]->gpu_data(), m);
  // The loss (1), sum m / N or sum m^2 / N, is written on the device.
  const bool l1 = params_.norm == HingeLossParams::Norm::L1;
  cuda::reduction_forward(c, 1, margins_.count(), l1 ? cuda::Reduce::asum : cuda::Reduce::sumsq,
                          1.f / static_cast<float>(num), m, top[0]->mutable_gpu_data());
}

void HingeLossLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // m, dx: (N, dim); label: (N), checked by forward; the loss weight (top diff) is read on the device.
  cuda::hinge_backward(*ctx.cuda(), bottom[0]->shape(0), bottom[0]->count(1),
                       params_.norm == HingeLossParams::Norm::L1, margins_.gpu_data(), bottom[1]->gpu_data(),
                       top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("HingeLoss", HingeLossLayer);

}  // namespace crema
