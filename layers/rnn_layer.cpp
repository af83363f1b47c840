#include "layers/rnn_layer.hpp"

namespace crema {

std::vector<ParamBlobSpec> RNNLayer::extra_params() const {
  return {{"W_ho (output weights)", {h_, h_}, params_.weight_filler}, {"b_o (output bias)", {h_}, params_.bias_filler}};
}

void RNNLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  RecurrentLayer::reshape(bottom, top);
  for (Blob* b : {&pre_, &hidden_, &out_}) b->reshape({t_, n_, h_});
  dstate_.reshape({n_, h_});
}

void RNNLayer::run_forward(const SequenceMath& m, const BlobVec& bottom, const BlobVec& top) {
  const long st = step();
  const int rows = t_ * n_, count = rows * h_;
  const float* cont = m.data(*bottom[1]);  // (T, N)
  float* pre = m.mutable_data(pre_);       // (T, N, H)
  input_forward(m, bottom, pre);
  const float* h0 = begin_state(m, bottom, 0);  // (N, H)
  float* h = m.mutable_data(hidden_);           // (T, N, H)
  for (int t = 0; t < t_; ++t) {
    recur_forward(m, t, cont, t == 0 ? h0 : h + (t - 1) * st, pre + t * st);
    m.tanh_forward(static_cast<int>(st), pre + t * st, h + t * st);
  }
  end_state(m, top, 0, h + (t_ - 1) * st);
  float* o = m.mutable_data(out_);  // (T N, H)
  m.gemm(false, true, rows, h_, h_, 1.f, h, m.data(*blobs_[static_cast<size_t>(w_ho_index())]), 0.f, o);
  m.add_to_rows(rows, h_, m.data(*blobs_[static_cast<size_t>(w_ho_index() + 1)]), o);
  m.tanh_forward(count, o, o);
  m.copy(count, o, m.mutable_data(*top[0]));
}

void RNNLayer::run_backward(const SequenceMath& m, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  const long st = step();
  const int rows = t_ * n_, count = rows * h_;
  const float* cont = m.data(*bottom[1]);  // (T, N)
  const float* h = m.data(hidden_);        // (T N, H)
  float* dout = m.mutable_diff(out_);      // (T N, H): the output pre-activations' gradient
  m.tanh_backward(count, m.data(out_), m.diff(*top[0]), dout);
  Blob& w_ho = *blobs_[static_cast<size_t>(w_ho_index())];
  if (param_propagate_down(w_ho_index())) m.gemm(true, false, h_, h_, rows, 1.f, dout, h, 1.f, m.mutable_diff(w_ho));
  if (param_propagate_down(w_ho_index() + 1))
    m.add_column_sums(rows, h_, dout, m.mutable_diff(*blobs_[static_cast<size_t>(w_ho_index() + 1)]));
  float* dh_out = m.mutable_diff(hidden_);  // (T N, H): what reaches h_t through o_t
  m.gemm(false, false, rows, h_, h_, 1.f, dout, m.data(w_ho), 0.f, dh_out);
  float* dpre = m.mutable_diff(pre_);   // (T, N, H)
  float* dh = m.mutable_data(dstate_);  // (N, H): the gradient reaching h_t from later steps
  final_state_diff(m, top, 0, dh);
  for (int t = t_ - 1; t >= 0; --t) {
    m.add(static_cast<int>(st), dh_out + t * st, dh);
    m.tanh_backward(static_cast<int>(st), h + t * st, dh, dpre + t * st);
    recur_backward(m, t, cont, dpre + t * st, dh);
  }
  initial_state_diff(m, propagate_down, bottom, 0, dh);
  recur_param_backward(m, dpre);
  input_backward(m, dpre, propagate_down, bottom);
}

CREMA_REGISTER_LAYER("RNN", RNNLayer);

}  // namespace crema
