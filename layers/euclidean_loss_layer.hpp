// EuclideanLoss: loss = sum_i (a_i - b_i)^2 / (2 N), N the first dimension.
// Backward: da = +(a - b) * top_diff / N, db = -(a - b) * top_diff / N; both bottoms
// may take a gradient (neither is a label), as in Caffe.
#pragma once

#include "layers/loss_layer.hpp"

namespace crema {

class EuclideanLossLayer : public LossLayer {
 public:
  explicit EuclideanLossLayer(const LayerSpec& spec) : LossLayer(spec) {}
  const char* type() const override { return "EuclideanLoss"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  bool allow_force_backward(int) const override { return true; }
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
  Blob diff_;  // a - b, kept from forward for backward
};

}  // namespace crema
