// ELU: y = x for x > 0, alpha (e^x - 1) otherwise (elu_param.alpha, default 1).
// dy/dx = 1 for x > 0, y + alpha otherwise. As in Caffe the branch is read from the
// bottom, which in place holds y; y > 0 exactly when x > 0 as long as alpha >= 0, so
// the layer runs in place unless alpha is negative (then it needs its own top).
#pragma once

#include "layers/neuron_layer.hpp"

namespace crema {

struct ELUParams {
  float alpha = 1.f;
  static ELUParams parse(MapReader r);
};

class ELULayer : public NeuronLayer {
 public:
  explicit ELULayer(const LayerSpec& spec);
  const char* type() const override { return "ELU"; }
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
  ELUParams params_;
};

}  // namespace crema
