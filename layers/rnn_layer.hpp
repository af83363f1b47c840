// RNN (Caffe's RNNLayer): a recurrent layer (layers/recurrent_layer.hpp) whose state
// is one hidden vector h (N, H), with an output transform on top. For each timestep t
//   h_t = tanh(W_xh x_t + b_h [+ W_xh_static x_static] + W_hh (cont_t h_{t-1}))
//   o_t = tanh(W_ho h_t + b_o)
// and the top is o (T, N, H); with expose_hidden the final state top is h_T. Parameters,
// in Caffe's order: W_xh (H, I), b_h (H), [W_xh_static (H, S)], W_hh (H, H), W_ho (H, H),
// b_o (H).
#pragma once

#include <vector>

#include "layers/recurrent_layer.hpp"

namespace crema {

class RNNLayer : public RecurrentLayer {
 public:
  explicit RNNLayer(const LayerSpec& spec) : RecurrentLayer(spec, 1) {}
  const char* type() const override { return "RNN"; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  int gate_width() const override { return h_; }
  const char* param_letter() const override { return "h"; }
  std::vector<ParamBlobSpec> extra_params() const override;
  void run_forward(const SequenceMath& m, const BlobVec& bottom, const BlobVec& top) override;
  void run_backward(const SequenceMath& m, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int w_ho_index() const { return w_h_index() + 1; }
  Blob pre_;     // (T, N, H): data the pre-activations of h, diff their gradient
  Blob hidden_;  // (T, N, H): data h_t, diff its gradient from the output transform
  Blob out_;     // (T, N, H): data o_t (kept: the top may be rewritten by a later layer), diff its pre-activation's gradient
  Blob dstate_;  // (N, H): backward's running dh
};

}  // namespace crema
