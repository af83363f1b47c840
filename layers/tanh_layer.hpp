// TanH: y = tanh(x). dy/dx = 1 - y^2 needs only the top, so the layer runs in place.
#pragma once

#include "layers/activation_layer.hpp"

namespace crema {

class TanHLayer : public ActivationLayer {
 public:
  explicit TanHLayer(const LayerSpec& spec);
  const char* type() const override { return "TanH"; }
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
