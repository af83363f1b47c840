// Split: hands one bottom to several consumers. Every top shares the bottom's data;
// backward sums the tops' gradients into the bottom's. The net inserts Splits where a
// blob feeds more than one layer, so any number of tops (1..k) works.
#pragma once

#include "engine/layer.hpp"

namespace crema {

class SplitLayer : public Layer {
 public:
  explicit SplitLayer(const LayerSpec& spec);
  const char* type() const override { return "Split"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 1; }
  int min_top() const override { return 1; }
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
  LayoutOutput diff_out_;  // the summed gradient, when the tops' are in one layout copy
};

}  // namespace crema
