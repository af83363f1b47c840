// Silence: takes any number of bottoms and produces nothing, so that blobs nobody
// reads (an unused label, a second output) are not reported as net outputs.
// Backward writes zero gradients into the bottoms that want one.
#pragma once

#include "engine/layer.hpp"

namespace crema {

class SilenceLayer : public Layer {
 public:
  using Layer::Layer;
  const char* type() const override { return "Silence"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int min_bottom() const override { return 1; }
  int exact_num_top() const override { return 0; }
  void reshape(const BlobVec&, const BlobVec&) override {}

 protected:
  void forward_cpu(Context&, const BlobVec&, const BlobVec&) override {}
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif
};

}  // namespace crema
