// Swish: y = x * sigmoid(beta x) (swish_param.beta, default 1).
// dy/dx = beta y + s (1 - beta y) with s = sigmoid(beta x), kept from forward; the
// gradient needs no x, so the layer runs in place.
#pragma once

#include "layers/neuron_layer.hpp"

namespace crema {

struct SwishParams {
  float beta = 1.f;
  static SwishParams parse(MapReader r);
};

class SwishLayer : public NeuronLayer {
 public:
  explicit SwishLayer(const LayerSpec& spec);
  const char* type() const override { return "Swish"; }
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
  SwishParams params_;
  Blob sigmoid_;  // sigmoid(beta x), same shape as the bottom
};

}  // namespace crema
