// Power: y = (shift + scale x)^power (power_param: power 1, scale 1, shift 0).
// dy/dx = power scale (shift + scale x)^(power - 1), and 0 when power or scale is 0
// (then y is the constant shift^power, or 1 for power 0, as in Caffe). Caffe computes
// the general case as power scale y / (shift + scale x), which is NaN where the base
// is 0; crema takes the power directly and gets the limit (0 for power > 1). The
// gradient needs x, which in place is kept for backward (see kept_input.hpp).
#pragma once

#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

struct PowerParams {
  float power = 1.f, scale = 1.f, shift = 0.f;
  static PowerParams parse(MapReader r);
};

class PowerLayer : public NeuronLayer {
 public:
  explicit PowerLayer(const LayerSpec& spec);
  const char* type() const override { return "Power"; }
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
  PowerParams params_;
  float diff_scale_ = 1.f;  // power * scale
  KeptInput input_;
};

}  // namespace crema
