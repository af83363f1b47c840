// Flatten: merges axes [axis, end_axis] (default 1..last) into one, e.g.
// (N, C, H, W) -> (N, C*H*W). No copy: the top shares the bottom's data, and in
// backward the bottom takes the top's gradient memory, as in Caffe.
#pragma once

#include "engine/layer.hpp"

namespace crema {

struct FlattenParams {
  int axis = 1;
  int end_axis = -1;
  static FlattenParams parse(MapReader r);
};

class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(const LayerSpec& spec);
  const char* type() const override { return "Flatten"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
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
  FlattenParams params_;
};

}  // namespace crema
