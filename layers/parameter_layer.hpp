// Parameter (Caffe's ParameterLayer): no bottom; its one top is a learnt blob of
// parameter_param.shape ({dim: [...]}; without it, one value), so that a parameter can feed any layer as a
// bottom (e.g. a learnt scale for Scale's second bottom). The blob starts at zero
// (Caffe has no filler here; load weights or let the solver move it). The top shares
// the blob's data and gradient, so the consumers' gradients are the parameter's.
#pragma once

#include <vector>

#include "engine/layer.hpp"

namespace crema {

class ParameterLayer : public Layer {
 public:
  explicit ParameterLayer(const LayerSpec& spec);
  const char* type() const override { return "Parameter"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  int exact_num_bottom() const override { return 0; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  std::vector<int> shape_;
};

}  // namespace crema
