// MultinomialLogisticLoss: the negative log of the probability given to each label,
//   loss = -sum_n log(max(p_{n, label_n}, 1e-20)) / N,
// for probabilities p (N, C, ...) that a Softmax (or anything else) has produced; one
// label per sample (class indices stored as floats). The clamp at 1e-20 (Caffe's
// kLOG_THRESHOLD) keeps a zero probability from giving an infinite loss.
// Backward: dp_{n, label_n} = -w / (N max(p, 1e-20)), zero elsewhere; w is the loss weight.
#pragma once

#include "layers/loss_layer.hpp"

namespace crema {

class MultinomialLogisticLossLayer : public LossLayer {
 public:
  using LossLayer::LossLayer;
  const char* type() const override { return "MultinomialLogisticLoss"; }
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
  Blob label_check_;  // (3) scratch of the GPU path's label check
};

// Caffe's kLOG_THRESHOLD: probabilities below it are clamped before the log.
constexpr float kLogThreshold = 1e-20f;

// Checks a (N, dim...) prediction blob against its labels: one label per sample.
// Shared by the losses that read one class index per sample (MultinomialLogistic, Hinge).
void check_one_label_per_sample(const LayerSpec& spec, const Blob& predictions, const Blob& labels);

}  // namespace crema
