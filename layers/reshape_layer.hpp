// Reshape: gives the bottom a new shape without copying. reshape_param.shape.dim
// replaces the axes [axis, axis + num_axes) (default: all of them); in it a 0 copies
// the bottom's dimension at that position and a single -1 is inferred from the
// count. E.g. shape {dim: [0, -1]} turns (N, C, H, W) into (N, C*H*W). The top shares
// the bottom's data, and in backward the bottom takes the top's gradient memory.
#pragma once

#include <vector>

#include "engine/layer.hpp"

namespace crema {

struct ReshapeParams {
  std::vector<int> dims;
  int axis = 0;
  int num_axes = -1;  // -1: every axis from `axis` on
  static ReshapeParams parse(MapReader r);
};

class ReshapeLayer : public Layer {
 public:
  explicit ReshapeLayer(const LayerSpec& spec);
  const char* type() const override { return "Reshape"; }
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
  ReshapeParams params_;
  std::vector<int> copy_axes_;  // positions in dims holding 0
  int inferred_axis_ = -1;      // position in dims holding -1, or -1 for none
  int constant_count_ = 1;      // product of the explicit (positive) dims
};

}  // namespace crema
