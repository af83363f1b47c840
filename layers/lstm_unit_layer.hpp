// LSTMUnit (Caffe's LSTMUnitLayer): one LSTM step (layers/lstm_unit_math.hpp) as a
// layer of its own, the piece Caffe's unrolled LSTM is built from. Bottoms
//   c_prev (1, N, H), gate pre-activations (1, N, 4H) in the order i, f, o, g, cont (1, N)
// and tops c (1, N, H), h (1, N, H). No gradient for cont. No parameters.
#pragma once

#include "engine/layer.hpp"

namespace crema {

class LSTMUnitLayer : public Layer {
 public:
  explicit LSTMUnitLayer(const LayerSpec& spec);
  const char* type() const override { return "LSTMUnit"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 3; }
  int exact_num_top() const override { return 2; }
  bool allow_force_backward(int bottom_index) const override { return bottom_index != 2; }
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
  void run_forward(Context& ctx, const BlobVec& bottom, const BlobVec& top);
  void run_backward(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom);
  int num_ = 0, hidden_ = 0;
  Blob scratch_;  // (1, N, 5H): the gradients backward computes but no bottom wants
};

}  // namespace crema
