// Concat: joins the bottoms along concat_param.axis (default 1, the channels); all
// other dimensions must agree. Backward hands each bottom its slice of the gradient.
// The legacy concat_dim (a non-negative axis) is accepted in place of axis.
#pragma once

#include <optional>

#include "engine/layer.hpp"

namespace crema {

struct ConcatParams {
  int axis = 1;
  std::optional<int> concat_dim;  // legacy; excludes axis
  static ConcatParams parse(MapReader r);
};

class ConcatLayer : public Layer {
 public:
  explicit ConcatLayer(const LayerSpec& spec);
  const char* type() const override { return "Concat"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int min_bottom() const override { return 1; }
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
  ConcatParams params_;
  int axis_ = 0;
  // Every blob seen as (num_concats_, its size along axis_, inner_).
  int num_concats_ = 0, inner_ = 0;
};

}  // namespace crema
