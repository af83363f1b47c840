#include "layers/lstm_layer.hpp"

namespace crema {

void LSTMLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  RecurrentLayer::reshape(bottom, top);
  gates_.reshape({t_, n_, 4 * h_});
  cells_.reshape({t_, n_, h_});
  dstate_.reshape({2, n_, h_});
}

void LSTMLayer::run_forward(const SequenceMath& m, const BlobVec& bottom, const BlobVec& top) {
  const long st = step(), gs = 4 * st;  // values per timestep of the state and of the gates
  const float* cont = m.data(*bottom[1]);  // (T, N)
  float* gates = m.mutable_data(gates_);   // (T, N, 4H)
  input_forward(m, bottom, gates);
  const float* h0 = begin_state(m, bottom, 0);  // (N, H)
  const float* c0 = begin_state(m, bottom, 1);  // (N, H)
  float* h = m.mutable_data(*top[0]);  // (T, N, H)
  float* c = m.mutable_data(cells_);   // (T, N, H)
  for (int t = 0; t < t_; ++t) {
    const float* h_prev = t == 0 ? h0 : h + (t - 1) * st;
    const float* c_prev = t == 0 ? c0 : c + (t - 1) * st;
    recur_forward(m, t, cont, h_prev, gates + t * gs);
    m.lstm_unit_forward(n_, h_, c_prev, gates + t * gs, cont + static_cast<long>(t) * n_, c + t * st, h + t * st);
  }
  end_state(m, top, 0, h + (t_ - 1) * st);
  end_state(m, top, 1, c + (t_ - 1) * st);
}

void LSTMLayer::run_backward(const SequenceMath& m, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const long st = step(), gs = 4 * st;
  const float* cont = m.data(*bottom[1]);   // (T, N)
  const float* gates = m.data(gates_);      // (T, N, 4H)
  const float* c = m.data(cells_);          // (T, N, H)
  const float* c0 = m.data(initial_[1]);    // (N, H)
  const float* dtop = m.diff(*top[0]);      // (T, N, H)
  float* dgates = m.mutable_diff(gates_);   // (T, N, 4H)
  float* dh = m.mutable_data(dstate_);      // (N, H): the gradient reaching h_t from later steps
  float* dc = dh + st;                      // (N, H): the same for c_t
  final_state_diff(m, top, 0, dh);
  final_state_diff(m, top, 1, dc);
  for (int t = t_ - 1; t >= 0; --t) {
    m.add(static_cast<int>(st), dtop + t * st, dh);
    const float* c_prev = t == 0 ? c0 : c + (t - 1) * st;
    m.lstm_unit_backward(n_, h_, c_prev, gates + t * gs, cont + static_cast<long>(t) * n_, dc, dh, dgates + t * gs,
                         dc);
    recur_backward(m, t, cont, dgates + t * gs, dh);
  }
  initial_state_diff(m, propagate_down, bottom, 0, dh);
  initial_state_diff(m, propagate_down, bottom, 1, dc);
  recur_param_backward(m, dgates);
  input_backward(m, dgates, propagate_down, bottom);
}

CREMA_REGISTER_LAYER("LSTM", LSTMLayer);

}  // namespace crema
