// ReLU: top = max(0, x) + negative_slope * min(0, x). Runs in place.
#pragma once

#include "layers/activation_layer.hpp"

namespace crema {

struct ReLUParams {
  float negative_slope = 0.f;
  Engine engine = Engine::DEFAULT;
  static ReLUParams parse(MapReader r);
};

class ReLULayer : public ActivationLayer {
 public:
  explicit ReLULayer(const LayerSpec& spec) : ReLULayer(spec, ReLUParams::parse(spec.params("relu_param"))) {}
  const char* type() const override { return "ReLU"; }
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
  // The input when it is still there: a later in-place layer may rewrite the top (e.g.
  // BatchNorm on it), and the mask must be the input's signs. In place, the top holds y,
  // whose signs are x's for slope >= 0.
  Blob& backward_values(const BlobVec& top, const BlobVec& bottom) const override {
    return bottom[0] != top[0] ? *bottom[0] : *top[0];
  }

 private:
  ReLULayer(const LayerSpec& spec, const ReLUParams& params);
  ReLUParams params_;
};

}  // namespace crema
