// ArgMax: the indices of the top_k largest values (argmax_param.top_k, default 1).
// Without argmax_param.axis, per sample over everything after the first axis, into
// a (N, 1, top_k) top, or (N, 2, top_k) with out_max_val (indices, then values);
// with axis, along that axis only, into the bottom's shape with that axis = top_k,
// holding the values instead of the indices when out_max_val is set. Ties go to the
// larger index (Caffe sorts (value, index) pairs in descending order). Indices are
// not differentiable: Caffe aborts when asked for a gradient, crema writes zeros.
#pragma once

#include <optional>

#include "engine/layer.hpp"

namespace crema {

struct ArgMaxParams {
  bool out_max_val = false;
  int top_k = 1;
  std::optional<int> axis;
  static ArgMaxParams parse(MapReader r);
};

class ArgMaxLayer : public Layer {
 public:
  explicit ArgMaxLayer(const LayerSpec& spec);
  const char* type() const override { return "ArgMax"; }
  bool has_gradient() const override { return false; }  // piecewise constant
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
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
  ArgMaxParams params_;
  // The bottom seen as (outer, dim_, inner_): dim_ values are ranked for each of the
  // outer * inner_ positions. Without an axis: dim_ = count(1), inner_ = 1.
  int dim_ = 0, inner_ = 0;
  int outer_count(const Blob& bottom) const {
    return dim_ == 0 || inner_ == 0 ? 0 : bottom.count() / (dim_ * inner_);
  }
};

}  // namespace crema
