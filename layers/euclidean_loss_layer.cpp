#include "layers/euclidean_loss_layer.hpp"

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/loss_kernels.hpp"
#endif

namespace crema {

void EuclideanLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  if (bottom[0]->count(1) != bottom[1]->count(1))
    spec_.fail("EuclideanLoss inputs must have the same dimension; got " + bottom[0]->shape_string() + " and " +
               bottom[1]->shape_string());
  diff_.reshape_like(*bottom[0]);
}

void EuclideanLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int n = bottom[0]->count();
  const float* a = bottom[0]->cpu_data();  // a: (N, ...)
  const float* b = bottom[1]->cpu_data();  // b: (N, ...), same count
  float* d = diff_.mutable_cpu_data();     // d: (N, ...)
  for (int i = 0; i < n; ++i) d[i] = a[i] - b[i];
  const float dot = cpu_dot(n, d, d);
  top[0]->mutable_cpu_data()[0] = dot / static_cast<float>(bottom[0]->shape(0)) / 2.f;
}

void EuclideanLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  const int n = diff_.count();
  const float* d = diff_.cpu_data();  // d: (N, ...), a - b
  for (size_t k = 0; k < 2; ++k) {
    if (!propagate_down[k]) continue;
    const float sign = k == 0 ? 1.f : -1.f;
    // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
    const float alpha = sign * top[0]->cpu_diff()[0] / static_cast<float>(bottom[k]->shape(0));
    float* dx = bottom[k]->mutable_cpu_diff();  // dx: (N, ...)
    for (int i = 0; i < n; ++i) dx[i] = alpha * d[i];
  }
}

#ifdef CREMA_WITH_CUDA
void EuclideanLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int n = bottom[0]->count();
  // a, b, d: (N, ...), same count; the loss (1) is reduced and written on the device.
  cuda::gpu_sub(c, n, bottom[0]->gpu_data(), bottom[1]->gpu_data(), diff_.mutable_gpu_data());
  cuda::sumsq_to_gpu(c, n, diff_.gpu_data(), 0.5f / static_cast<float>(bottom[0]->shape(0)),
                     top[0]->mutable_gpu_data());
}

void EuclideanLossLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  for (size_t k = 0; k < 2; ++k) {
    if (!propagate_down[k]) continue;
    const float sign = k == 0 ? 1.f : -1.f;
    // dx (N, ...) = sign · top_diff / N · d, the top's diff (the loss weight) read on the device.
    cuda::scale_by_scalar_gpu(*ctx.cuda(), diff_.count(), top[0]->gpu_diff(),
                              sign / static_cast<float>(bottom[k]->shape(0)), diff_.gpu_data(),
                              bottom[k]->mutable_gpu_diff());
  }
}
#endif

CREMA_REGISTER_LAYER("EuclideanLoss", EuclideanLossLayer);

}  // namespace crema
