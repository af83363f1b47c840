// Exp: y = base^(shift + scale x) (exp_param: base, default -1 meaning e; scale 1;
// shift 0), computed as Caffe does: y = outer * e^(inner x) with
// inner = scale ln(base) and outer = base^shift. dy/dx = inner y needs only the top,
// so the layer runs in place.
#pragma once

#include "layers/neuron_layer.hpp"

namespace crema {

// exp_param and log_param, which hold the same keys. base must be -1 (meaning e) or
// strictly positive.
struct BaseScaleShiftParams {
  float base = -1.f, scale = 1.f, shift = 0.f;
  static BaseScaleShiftParams parse(MapReader r);
};

class ExpLayer : public NeuronLayer {
 public:
  explicit ExpLayer(const LayerSpec& spec);
  const char* type() const override { return "Exp"; }
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

 private:
  BaseScaleShiftParams params_;
  float inner_scale_ = 1.f, outer_scale_ = 1.f;
};

}  // namespace crema
