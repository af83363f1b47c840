// Sigmoid: y = 1 / (1 + e^-x), computed as 0.5 tanh(x / 2) + 0.5 (as Caffe does),
// which cannot overflow for large |x|. dy/dx = y (1 - y) needs only the top, so the
// layer runs in place.
#pragma once

#include "layers/activation_layer.hpp"

namespace crema {

class SigmoidLayer : public ActivationLayer {
 public:
  explicit SigmoidLayer(const LayerSpec& spec);
  const char* type() const override { return "Sigmoid"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif
};

}  // namespace crema
