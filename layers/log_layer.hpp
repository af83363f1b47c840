// Log: y = log_base(shift + scale x) (log_param: base, default -1 meaning e; scale 1;
// shift 0), computed as ln(shift + scale x) / ln(base).
// dy/dx = scale / ((shift + scale x) ln(base)). The gradient needs x, which in place
// is kept for backward (see kept_input.hpp).
#pragma once

#include "layers/exp_layer.hpp"
#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

class LogLayer : public NeuronLayer {
 public:
  explicit LogLayer(const LayerSpec& spec);
  const char* type() const override { return "Log"; }
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
  float base_scale_ = 1.f;  // 1 / ln(base)
  KeptInput input_;
};

}  // namespace crema
