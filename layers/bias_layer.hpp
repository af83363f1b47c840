// Bias (Caffe's BiasLayer): y = x + b, with b broadcast along x's axes from
// bias_param.axis (see axis_broadcast.hpp). b is the second bottom when there is
// one, else a learnt parameter of x's axes [axis, axis + num_axes) filled from
// bias_param.filler (default constant 0). dx = dy; db = dy summed over the other
// axes. Runs in place.
#pragma once

#include "layers/axis_broadcast.hpp"

namespace crema {

class BiasLayer : public Layer {
 public:
  explicit BiasLayer(const LayerSpec& spec);
  const char* type() const override { return "Bias"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int min_bottom() const override { return 1; }
  int max_bottom() const override { return 2; }
  int exact_num_top() const override { return 1; }
  bool runs_in_place(int top, int bottom) const override { return top == 0 && bottom == 0; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  AxisOperandParams params_;
  AxisBroadcast broadcast_;
};

}  // namespace crema
