#include "layers/contrastive_loss_layer.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/catalog_kernels.hpp"
#endif

namespace crema {

ContrastiveLossParams ContrastiveLossParams::parse(MapReader r) {
  ContrastiveLossParams p;
  p.margin = r.get_float("margin", 1.f);
  p.legacy_version = r.get_bool("legacy_version", false);
  r.finish();
  return p;
}

ContrastiveLossLayer::ContrastiveLossLayer(const LayerSpec& spec)
    : LossLayer(spec), params_(ContrastiveLossParams::parse(spec.params("contrastive_loss_param"))) {}

void ContrastiveLossLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::reshape(bottom, top);
  if (bottom[0]->shape() != bottom[1]->shape())
    spec_.fail("ContrastiveLoss compares two feature blobs of the same shape; got " + bottom[0]->shape_string() +
               " and " + bottom[1]->shape_string());
  if (bottom[2]->count() != bottom[0]->shape(0))
    spec_.fail("ContrastiveLoss needs one similarity label per pair: " + std::to_string(bottom[0]->shape(0)) +
               " values, but the third bottom has shape " + bottom[2]->shape_string());
  diff_.reshape_like(*bottom[0]);
  dist_sq_.reshape({bottom[0]->shape(0)});
  scratch_.reshape({2});
}

void ContrastiveLossLayer::refuse_similarity(int n, float value) const {
  throw Error(fmt::format(
      "ContrastiveLoss layer '{}': the similarity label of pair {} in the batch is {}; it must be 1 (similar) or 0 "
      "(dissimilar)",
      name(), n, value));
}

void ContrastiveLossLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int num = bottom[0]->shape(0);
  const int channels = bottom[0]->count(1);
  const float* a = bottom[0]->cpu_data();  // a: (N, C)
  const float* b = bottom[1]->cpu_data();  // b: (N, C)
  const float* y = bottom[2]->cpu_data();  // y: (N)
  float* d = diff_.mutable_cpu_data();     // d: (N, C)
  float* dist_sq = dist_sq_.mutable_cpu_data();  // dist_sq: (N)
  for (int n = 0; n < num; ++n)
    if (y[n] != 0.f && y[n] != 1.f) refuse_similarity(n, y[n]);
  for (int i = 0; i < bottom[0]->count(); ++i) d[i] = a[i] - b[i];
  double loss = 0;
  for (int n = 0; n < num; ++n) {
    const float* dn = d + static_cast<size_t>(n) * channels;
    dist_sq[n] = cpu_dot(channels, dn, dn);
    if (static_cast<int>(y[n]) != 0) {
      loss += dist_sq[n];
    } else if (params_.legacy_version) {
      loss += std::max(params_.margin - dist_sq[n], 0.f);
    } else {
      const float gap = std::max(params_.margin - std::sqrt(dist_sq[n]), 0.f);
      loss += gap * gap;
    }
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss) / static_cast<float>(num) / 2.f;
}

void ContrastiveLossLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  const int num = bottom[0]->shape(0);
  const int channels = bottom[0]->count(1);
  const float* y = bottom[2]->cpu_data();        // y: (N)
  const float* d = diff_.cpu_data();             // d: (N, C), a - b
  const float* dist_sq = dist_sq_.cpu_data();    // dist_sq: (N)
  for (size_t k = 0; k < 2; ++k) {
    if (!propagate_down[k]) continue;
    const float sign = k == 0 ? 1.f : -1.f;
    // top diff holds d(total loss)/d(this loss), i.e. the loss weight.
    const float alpha = sign * top[0]->cpu_diff()[0] / static_cast<float>(num);
    float* dx = bottom[k]->mutable_cpu_diff();  // dx: (N, C)
    for (int n = 0; n < num; ++n) {
      const float* dn = d + static_cast<size_t>(n) * channels;  // dn: (C)
      float* dxn = dx + static_cast<size_t>(n) * channels;      // dxn: (C)
      float factor = alpha;  // similar pairs
      if (static_cast<int>(y[n]) == 0) {
        float gap = 0.f;
        if (params_.legacy_version) {
          gap = params_.margin - dist_sq[n];
          factor = -alpha;
        } else {
          const float dist = std::sqrt(dist_sq[n]);
          gap = params_.margin - dist;
          factor = -alpha * gap / (dist + 1e-4f);
        }
        if (gap <= 0.f) factor = 0.f;
      }
      for (int c = 0; c < channels; ++c) dxn[c] = factor * dn[c];
    }
  }
}

#ifdef CREMA_WITH_CUDA
void ContrastiveLossLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int num = bottom[0]->shape(0);
  const int channels = bottom[0]->count(1);
  // The labels stay on the device; only the verdict on the first one not 0 or 1 comes back.
  const cuda::BadIndex bad = cuda::find_bad_label(c, num, bottom[2]->gpu_data(), 2, {}, scratch_.mutable_gpu_data());
  if (bad.position >= 0) refuse_similarity(static_cast<int>(bad.position), bad.value);
  float* d = diff_.mutable_gpu_data();  // d: (N, C) = a - b
  cuda::gpu_sub(c, bottom[0]->count(), bottom[0]->gpu_data(), bottom[1]->gpu_data(), d);
  float* dist_sq = dist_sq_.mutable_gpu_data();  // dist_sq: (N)
  cuda::reduction_forward(c, num, channels, cuda::Reduce::sumsq, 1.f, d, dist_sq);
  // y: (N); the loss (1) is written on the device.
  cuda::contrastive_forward(c, num, {params_.margin, params_.legacy_version}, dist_sq, bottom[2]->gpu_data(),
                            top[0]->mutable_gpu_data());
}

void ContrastiveLossLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  for (size_t k = 0; k < 2; ++k) {
    if (!propagate_down[k]) continue;
    // y: (N); d, dx: (N, C); the loss weight (top diff) is read on the device.
    cuda::contrastive_backward(*ctx.cuda(), bottom[0]->shape(0), bottom[0]->count(1),
                               {params_.margin, params_.legacy_version}, k == 0 ? 1.f : -1.f, dist_sq_.gpu_data(),
                               bottom[2]->gpu_data(), diff_.gpu_data(), top[0]->gpu_diff(),
                               bottom[k]->mutable_gpu_diff());
  }
}
#endif

CREMA_REGISTER_LAYER("ContrastiveLoss", ContrastiveLossLayer);

}  // namespace crema
