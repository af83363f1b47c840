// Threshold: y = 1 where x > threshold (threshold_param.threshold, default 0), else 0.
// A step function has no useful gradient; Caffe aborts when asked for one. crema
// writes the true gradient, zero, so that a net with force_backward or a Split that
// also feeds a loss still runs. Runs in place.
#pragma once

#include "layers/neuron_layer.hpp"

namespace crema {

struct ThresholdParams {
  float threshold = 0.f;
  static ThresholdParams parse(MapReader r);
};

class ThresholdLayer : public NeuronLayer {
 public:
  explicit ThresholdLayer(const LayerSpec& spec);
  const char* type() const override { return "Threshold"; }
  bool has_gradient() const override { return false; }  // piecewise constant
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
  ThresholdParams params_;
};

}  // namespace crema
