// Scale (Caffe's ScaleLayer): y = x * s (+ b with scale_param.bias_term), with s and
// b broadcast along x's axes from scale_param.axis (see axis_broadcast.hpp). s is
// the second bottom when there is one, else a learnt parameter of x's axes
// [axis, axis + num_axes) filled from scale_param.filler (default constant 1); the
// bias has the scale's shape and comes from bias_filler (default constant 0).
// Blobs, Caffe's order: [scale, bias] or, with the scale as bottom 1, [bias].
// dx = dy * s; ds = sum of dy x over the other axes; db = sum of dy. Runs in place
// (x is kept for ds, see kept_input.hpp). After BatchNorm it supplies the learnt
// gamma and beta.
#pragma once

#include "layers/axis_broadcast.hpp"
#include "layers/kept_input.hpp"

namespace crema {

struct ScaleParams {
  AxisOperandParams operand;
  bool bias_term = false;
  FillerSpec bias_filler;
  static ScaleParams parse(MapReader r);
};

class ScaleLayer : public Layer {
 public:
  explicit ScaleLayer(const LayerSpec& spec);
  const char* type() const override { return "Scale"; }
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
  const Blob& scale(const BlobVec& bottom) const { return bottom.size() > 1 ? *bottom[1] : *blobs_[0]; }
  // Index of the bias in blobs_ (-1 without bias_term).
  int bias_index() const { return params_.bias_term ? static_cast<int>(blobs_.size()) - 1 : -1; }

  // On a channel-blocked bottom (a oneDNN convolution's output, through BatchNorm)
  // with the scale a parameter, the same loops in that layout; false elsewhere.
  bool forward_blocked(const BlobVec& bottom, const BlobVec& top);
  bool backward_blocked(const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom);
  // The bias's and the scale's gradients (parameters or bottom 1) from dy and x, both
  // (outer, dim, inner) as `view` sees them (plain or channel-blocked).
  void operand_gradients(const AxisBroadcast& view, const float* dy, const float* x,
                         const std::vector<bool>& propagate_down, const BlobVec& bottom);

  ScaleParams params_;
  AxisBroadcast broadcast_;
  KeptInput input_;
  LayoutOutput top_out_, bottom_diff_out_;  // their layout buffers when not in place
};

}  // namespace crema
