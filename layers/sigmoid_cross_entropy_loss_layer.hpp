// SigmoidCrossEntropyLoss: the cross entropy between targets t in [0, 1] and the
// sigmoid p of the scores x, summed over every element and divided by the normalizer:
//   loss = -sum_i (t_i log p_i + (1 - t_i) log(1 - p_i)) / normalizer,
// computed in Caffe's stable form x (t - [x >= 0]) - log(1 + e^(x - 2x [x >= 0])).
// Bottoms: scores and targets of the same count; a target outside [0, 1] (a 0/255 mask not
// scaled, NaN) stops the run, naming it, as a class label out of range does. loss_param: ignore_label skips the
// elements whose target, truncated to int, equals it; normalization is BATCH_SIZE
// (the first dimension) unless normalization or the legacy normalize says otherwise
// (Caffe's default for this layer, unlike SoftmaxWithLoss), with VALID counting the
// elements not ignored. Backward: dx = (p - t) * top_diff / normalizer, zero where ignored.
#pragma once

#include "layers/loss_layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/catalog_kernels.hpp"
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

class SigmoidCrossEntropyLossLayer : public LossLayer {
 public:
  explicit SigmoidCrossEntropyLossLayer(const LayerSpec& spec);
  const char* type() const override { return "SigmoidCrossEntropyLoss"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  bool ignored(float target) const;  // target finite
  [[noreturn]] void refuse_target(int64_t position, float value) const;
#ifdef CREMA_WITH_CUDA
  cuda::TargetRule target_rule(const Blob& scores) const;  // ignored() and the normalizer, for the kernels
#endif
  LossParams loss_params_;
  Blob sigmoid_;           // p, same shape as the scores; kept for backward
  float normalizer_ = 1.f;  // from the last forward
  Blob device_normalizer_;  // (1) the same, kept on the device by the GPU path
  Blob scratch_;            // (2) the GPU target check's verdict
};

}  // namespace crema
