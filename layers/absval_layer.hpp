// AbsVal: y = |x|; dy/dx = sign(x), 0 at x = 0 (as Caffe's caffe_cpu_sign). Caffe
// refuses to run it in place because the gradient needs x; crema keeps x instead
// (see kept_input.hpp), so in-place definitions work too.
#pragma once

#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

class AbsValLayer : public NeuronLayer {
 public:
  using NeuronLayer::NeuronLayer;
  const char* type() const override { return "AbsVal"; }
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
