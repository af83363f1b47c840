// What Caffe's recurrent layers (RNN, LSTM) share (RecurrentLayer). The bottoms are
//   x (T, N, ...)        T timesteps of N independent streams, flattened to I values
//   cont (T, N)          0 where a sequence starts (the previous state is dropped), else 1
//   x_static (N, ...)    optional, S values per stream added to every timestep's input
//   h_0 [c_0] (1, N, H)  the initial state, only with recurrent_param.expose_hidden
// and the tops the output (T, N, H), then with expose_hidden the final state
// h_T [c_T] (1, N, H). Without expose_hidden the final state of one forward is the
// initial state of the next (as in Caffe: cont = 1 at the first timestep continues the
// streams across batches, truncated backpropagation through time); it starts at zero,
// is zeroed when N changes, and is saved in snapshots.
//
// Caffe builds an unrolled net of InnerProduct, Scale, Eltwise and LSTMUnit layers;
// crema runs the same arithmetic directly, one matrix product for every timestep's
// input transform and one per timestep for the recurrence, with the same parameter
// blobs in the same order (so .caffemodel weights load). Unlike Caffe, T may change
// between forwards, and gradients flow from h_T/c_T and into h_0/c_0 (Caffe drops them).
// The loops are written once over SequenceMath and run on the CPU or a CUDA device.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "engine/filler.hpp"
#include "engine/layer.hpp"
#include "layers/param_blobs.hpp"
#include "layers/sequence_math.hpp"

namespace crema {

struct RecurrentParams {
  int num_output = 0;  // H
  FillerSpec weight_filler, bias_filler;
  bool expose_hidden = false;

  static RecurrentParams parse(MapReader r);
};

class RecurrentLayer : public Layer {
 public:
  RecurrentLayer(const LayerSpec& spec, int states);
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int min_bottom() const override { return 2 + exposed(); }
  int max_bottom() const override { return 3 + exposed(); }
  std::string blob_count_hint() const override {
    const std::string states = exposed() == 2 ? "h_0, c_0" : "h_0";
    return params_.expose_hidden ? "; with expose_hidden the bottoms are x, cont, [x_static,] " + states +
                                       " and the tops the output, " + (exposed() == 2 ? "h_T, c_T" : "h_T")
                                 : "; initial states as bottoms (and final states as tops) need recurrent_param: "
                                   "{expose_hidden: true}";
  }
  int exact_num_top() const override { return 1 + exposed(); }
  // h_T may be h_0's blob and c_T c_0's (a deploy net stepping through a sequence).
  bool runs_in_place(int top, int bottom) const override { return top >= 1 && bottom == top + 1; }
  bool allow_force_backward(int bottom_index) const override { return bottom_index != 1; }  // cont: no gradient
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool reshape_is_trial_safe() const override { return false; }

  std::string save_state() const override;
  void restore_state(const std::string& state) override;
  // The carried states (none with expose_hidden, where the net carries them).
  std::vector<Blob*> updated_by_forward() override {
    if (exposed()) return {};
    std::vector<Blob*> carried;
    for (int k = 0; k < states_; ++k) carried.push_back(&carried_[static_cast<size_t>(k)]);
    return carried;
  }

 protected:
  // The input side's width G (4H for LSTM, H for RNN) and the parameter blobs that
  // follow W_x, b [, W_static], W_h (RNN's output transform).
  virtual int gate_width() const = 0;
  virtual std::vector<ParamBlobSpec> extra_params() const { return {}; }
  // The letter Caffe names the parameters with: W_x<l>, b_<l>, W_x<l>_static, W_h<l>.
  virtual const char* param_letter() const = 0;
  // The time loops, on `m`'s device.
  virtual void run_forward(const SequenceMath& m, const BlobVec& bottom, const BlobVec& top) = 0;
  virtual void run_backward(const SequenceMath& m, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) = 0;

  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

  // Pieces the loops share.
  // a (T N, G) = x W_xᵀ + b, plus W_static x_static on every timestep.
  void input_forward(const SequenceMath& m, const BlobVec& bottom, float* a);
  // From da (T N, G): the gradients of W_x, b, W_static, x and x_static (and none for cont).
  void input_backward(const SequenceMath& m, const float* da, const std::vector<bool>& propagate_down,
                      const BlobVec& bottom);
  // conted_t = cont_t ⊙ h_prev, then a_t += conted_t W_hᵀ.  cont: (T, N); h_prev: (N, H); a_t: (N, G)
  void recur_forward(const SequenceMath& m, int t, const float* cont, const float* h_prev, float* a_t);
  // dh_prev = cont_t ⊙ (da_t W_h).  cont: (T, N); da_t: (N, G); dh_prev: (N, H)
  void recur_backward(const SequenceMath& m, int t, const float* cont, const float* da_t, float* dh_prev);
  // dW_h += daᵀ conted over all timesteps.  da: (T N, G)
  void recur_param_backward(const SequenceMath& m, const float* da);
  // The initial state k for this forward: the bottom with expose_hidden, else the
  // state carried from the last forward; kept in initial_[k] for backward.
  const float* begin_state(const SequenceMath& m, const BlobVec& bottom, int k);
  // The final state k: to top 1 + k with expose_hidden, else carried to the next forward.
  void end_state(const SequenceMath& m, const BlobVec& top, int k, const float* state);
  // The gradient arriving at the final state k (top 1 + k's diff with expose_hidden,
  // else zero) into dstate, and the one leaving the initial state k into its bottom.
  void final_state_diff(const SequenceMath& m, const BlobVec& top, int k, float* dstate);
  void initial_state_diff(const SequenceMath& m, const std::vector<bool>& propagate_down, const BlobVec& bottom,
                          int k, const float* dstate);

  int exposed() const { return params_.expose_hidden ? states_ : 0; }
  int w_h_index() const { return has_static_ ? 3 : 2; }
  long step() const { return static_cast<long>(n_) * h_; }  // values in one timestep's (N, H) state

  RecurrentParams params_;
  int states_;              // hidden states carried: 1 (RNN: h) or 2 (LSTM: h, c)
  bool has_static_ = false;
  int t_ = 0, n_ = 0;       // timesteps, streams
  int i_ = 0, s_ = 0, h_ = 0;  // input values per step, static input values, hidden size
  std::array<Blob, 2> carried_;  // (1, N, H) each: the state the next forward starts from
  std::array<Blob, 2> initial_;  // (1, N, H) each: the state this forward started from
  Blob conted_;                 // (T, N, H): cont_t ⊙ h_{t-1}, the recurrent products' input
  Blob static_gates_;           // (N, G): W_static x_static; in backward its gradient
  Blob cont_check_;             // (2): scratch of the check that cont lies in [0, 1]

 private:
  void check_bottoms(const BlobVec& bottom) const;
  // Refuses a cont value outside [0, 1] (a label wired in as cont, flags of 2): no
  // sequence boundary means that, and the state would grow or flip sign step by step.
  void check_cont(const SequenceMath& m, const Blob& cont);
  // The math for ctx's device (the CPU's kept across passes: it caches its products).
  SequenceMath& math(Context& ctx);
  std::unique_ptr<SequenceMath> math_;
};

}  // namespace crema
