// BNLL (binomial normal log likelihood, i.e. softplus): y = log(1 + e^x), computed as
// x + log(1 + e^-x) for x > 0 so that e^x cannot overflow. dy/dx = e^x / (1 + e^x)
// with x capped at 50 (Caffe's kBNLL_THRESHOLD) first. The gradient needs x, which
// in place is kept for backward (see kept_input.hpp).
#pragma once

#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

class BNLLLayer : public NeuronLayer {
 public:
  using NeuronLayer::NeuronLayer;
  const char* type() const override { return "BNLL"; }
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
  KeptInput input_;
};

}  // namespace crema
