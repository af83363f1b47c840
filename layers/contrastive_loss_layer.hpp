// ContrastiveLoss (Hadsell, Chopra and LeCun 2006) on pairs of feature vectors a_n, b_n
// with a similarity label y_n, 1 for similar and 0 for dissimilar (Caffe also takes any
// value, truncated to int, non-zero as similar; crema refuses the others, which are a
// distance or damaged data, never a similarity):
//   loss = sum_n (y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2) / (2 N),
// d_n = ||a_n - b_n||, contrastive_loss_param.margin default 1. With legacy_version
// the dissimilar term is max(margin - d_n^2, 0), as in Caffe's first version.
// Bottoms: a and b (N, C, ...) of the same shape, y (N values). Backward (a; b gets
// the negative): similar y: (a - b) w / N; dissimilar, inside the margin:
// -(margin - d) / (d + 1e-4) (a - b) w / N, or -(a - b) w / N for legacy_version
// (the 1e-4, Caffe's, keeps d = 0 finite); w is the loss weight (top diff).
#pragma once

#include "layers/loss_layer.hpp"

namespace crema {

struct ContrastiveLossParams {
  float margin = 1.f;
  bool legacy_version = false;
  static ContrastiveLossParams parse(MapReader r);
};

class ContrastiveLossLayer : public LossLayer {
 public:
  explicit ContrastiveLossLayer(const LayerSpec& spec);
  const char* type() const override { return "ContrastiveLoss"; }
  int exact_num_bottom() const override { return 3; }
  // a and b take gradients; the similarity label does not.
  bool allow_force_backward(int bottom_index) const override { return bottom_index != 2; }
  bool backward_refuses(int) const override { return false; }  // as Caffe's backward
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
  ContrastiveLossParams params_;
  Blob diff_;     // a - b: (N, C)
  Blob dist_sq_;  // ||a_n - b_n||^2: (N)
  Blob scratch_;  // the GPU label check's: (2)
  // Throws for a similarity label `value` of pair `n` that is neither 0 nor 1.
  [[noreturn]] void refuse_similarity(int n, float value) const;
};

}  // namespace crema
