// Slice: cuts the bottom along slice_param.axis (default 1) into the tops, Concat's
// inverse. slice_point lists the cut positions (one fewer than the tops, strictly
// increasing, inside the axis); without it the axis is split into equal parts, which
// the number of tops must divide. The legacy slice_dim (a non-negative axis) is
// accepted in place of axis. Backward copies each top's gradient back into its part.
#pragma once

#include <optional>
#include <vector>

#include "engine/layer.hpp"

namespace crema {

struct SliceParams {
  int axis = 1;
  std::optional<int> slice_dim;  // legacy; excludes axis
  std::vector<int> slice_point;
  static SliceParams parse(MapReader r);
};

// Copies between a blob seen as (outer, whole_axis, inner) and one part of it along
// the middle axis, (outer, part_axis, inner), which starts at `offset`: into the part
// when `to_part`, else back into the whole. Slice and Concat are this copy.
void copy_axis_part(int outer, int whole_axis, int part_axis, int offset, int inner, bool to_part, const float* from,
                    float* to);

class SliceLayer : public Layer {
 public:
  explicit SliceLayer(const LayerSpec& spec);
  const char* type() const override { return "Slice"; }
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
  SliceParams params_;
  int axis_ = 0;
  // The bottom seen as (outer_, its size along axis_, inner_).
  int outer_ = 0, inner_ = 0;
};

}  // namespace crema
