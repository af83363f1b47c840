// LSTM (Caffe's LSTMLayer): a recurrent layer (layers/recurrent_layer.hpp) whose
// state is a hidden vector h and a cell c, each (N, H). For each timestep t
//   gates_t = W_xc x_t + b_c [+ W_xc_static x_static] + W_hc (cont_t h_{t-1})   (N, 4H)
//   c_t, h_t = the LSTM unit of (c_{t-1}, gates_t, cont_t)  (layers/lstm_unit_math.hpp)
// and the top is h (T, N, H). Parameters, in Caffe's order: W_xc (4H, I), b_c (4H),
// [W_xc_static (4H, S)], W_hc (4H, H); gate rows i, f, o, g.
#pragma once

#include "layers/recurrent_layer.hpp"

namespace crema {

class LSTMLayer : public RecurrentLayer {
 public:
  explicit LSTMLayer(const LayerSpec& spec) : RecurrentLayer(spec, 2) {}
  const char* type() const override { return "LSTM"; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  int gate_width() const override { return 4 * h_; }
  const char* param_letter() const override { return "c"; }
  void run_forward(const SequenceMath& m, const BlobVec& bottom, const BlobVec& top) override;
  void run_backward(const SequenceMath& m, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob gates_;  // (T, N, 4H): data the gate pre-activations, diff their gradient
  Blob cells_;  // (T, N, H): c_t
  Blob dstate_;  // (2, N, H): backward's running dh and dc
};

}  // namespace crema
