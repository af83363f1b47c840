// HingeLoss: the one-versus-all hinge loss of scores x (N, C, ...) against one label
// per sample. With s_nc = -1 for the true class and +1 for the others, the margins are
// m_nc = max(0, 1 + s_nc x_nc), and
//   L1 (hinge_loss_param.norm, the default): loss = sum m / N
//   L2:                                       loss = sum m^2 / N
// Backward: dx = s sign(m) w / N (L1) or 2 s m w / N (L2); w is the loss weight.
#pragma once

#include "layers/loss_layer.hpp"

namespace crema {

struct HingeLossParams {
  enum class Norm { L1, L2 } norm = Norm::L1;
  static HingeLossParams parse(MapReader r);
};

class HingeLossLayer : public LossLayer {
 public:
  explicit HingeLossLayer(const LayerSpec& spec);
  const char* type() const override { return "HingeLoss"; }
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
  HingeLossParams params_;
  // The margins m, kept for backward (Caffe keeps them, signed, in the bottom's diff).
  Blob margins_;
  Blob label_check_;  // (2) scratch of the GPU path's label check
};

}  // namespace crema
