// SoftmaxWithLoss: the multinomial logistic loss of the softmax of the scores,
//   loss = -sum_{valid n} log(max(p_{n, label_n}, FLT_MIN)) / normalizer,
// over every position around softmax_param.axis (N, or N*H*W for axis 1 of NCHW).
// Bottoms: scores (outer, C, inner), labels (outer * inner values, class indices
// stored as floats). Tops: the loss and, optionally, the probabilities.
// Backward: dscores = (p - onehot(label)) * top_diff / normalizer, zero at ignored
// positions; top_diff is the loss weight the net puts there. The clamp at FLT_MIN is
// why a diverged net reports -ln(FLT_MIN) = 87.3365.
#pragma once

#include "layers/loss_layer.hpp"
#include "layers/softmax_layer.hpp"

namespace crema {

class SoftmaxWithLossLayer : public LossLayer {
 public:
  explicit SoftmaxWithLossLayer(const LayerSpec& spec);
  const char* type() const override { return "SoftmaxWithLoss"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_top() const override { return -1; }
  int min_top() const override { return 1; }
  int max_top() const override { return 2; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  std::optional<LabelUse> label_use() const override { return LabelUse{channels_, loss_params_.ignore_label}; }

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
  SoftmaxParams softmax_params_;
  LossParams loss_params_;
  Blob prob_;  // (outer, C, inner): kept for backward; the second top shares it
  Blob loss_stats_;  // (3), GPU only: positions not ignored, bad labels, unused
  int outer_ = 0, channels_ = 0, inner_ = 0;
};

}  // namespace crema
