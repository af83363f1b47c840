// Softmax over one axis (softmax_param.axis, default 1, the channels):
//   y_c = exp(x_c - max_k x_k) / sum_j exp(x_j - max_k x_k)
// Subtracting the max changes nothing mathematically and keeps exp from overflowing.
// Backward: dx_c = y_c (dy_c - sum_j dy_j y_j). Runs in place.
#pragma once

#include "engine/layer.hpp"

namespace crema {

struct SoftmaxParams {
  int axis = 1;
  static SoftmaxParams parse(MapReader r);
};

// The forward computation, shared with SoftmaxWithLoss.
// x, y: (outer, channels, inner), normalised over channels; y may alias x.
void softmax_cpu(int outer, int channels, int inner, const float* x, float* y);

class SoftmaxLayer : public Layer {
 public:
  explicit SoftmaxLayer(const LayerSpec& spec);
  const char* type() const override { return "Softmax"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  bool runs_in_place(int top, int bottom) const override { return top == 0 && bottom == 0; }
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
  SoftmaxParams params_;
  // The bottom seen as (outer_, channels_, inner_) around the softmax axis.
  int outer_ = 0, channels_ = 0, inner_ = 0;
};

}  // namespace crema
