// ReLU: top = max(0, x) + negative_slope * min(0, x). Runs in place.
#pragma once

#include "layers/neuron_layer.hpp"

namespace crema {

struct ReLUParams {
  float negative_slope = 0.f;
  static ReLUParams parse(MapReader r);
};

class ReLULayer : public NeuronLayer {
 public:
  explicit ReLULayer(const LayerSpec& spec);
  const char* type() const override { return "ReLU"; }

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  ReLUParams params_;
};

}  // namespace crema
