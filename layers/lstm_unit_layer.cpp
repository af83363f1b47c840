#include "layers/lstm_unit_layer.hpp"

#include <string>

#include "layers/sequence_math.hpp"

namespace crema {

LSTMUnitLayer::LSTMUnitLayer(const LayerSpec& spec) : Layer(spec) {}

void LSTMUnitLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& c_prev = *bottom[0];
  if (c_prev.num_axes() != 3 || c_prev.shape(0) != 1)
    spec_.fail(spec_.bottom_label(0) + " is the previous cell and must be (1, N, H); got shape " +
               c_prev.shape_string());
  num_ = c_prev.shape(1);
  hidden_ = c_prev.shape(2);
  if (bottom[1]->shape() != std::vector<int>{1, num_, 4 * hidden_})
    spec_.fail(spec_.bottom_label(1) + " holds the gate inputs i, f, o, g and must be (1, N, 4H) = (1, " +
               std::to_string(num_) + ", " + std::to_string(4 * hidden_) + "); got shape " + bottom[1]->shape_string());
  if (bottom[2]->shape() != std::vector<int>{1, num_})
    spec_.fail(spec_.bottom_label(2) + " holds the continuation flags and must be (1, N) = (1, " +
               std::to_string(num_) + "); got shape " + bottom[2]->shape_string());
  // Backward reads c_prev and the gate inputs, so neither may be overwritten by a top.
  if (top[0] == bottom[0] || top[1] == bottom[0] || top[0] == bottom[1] || top[1] == bottom[1])
    spec_.fail("LSTMUnit does not compute in place; give its tops their own names");
  top[0]->reshape(c_prev.shape());
  top[1]->reshape(c_prev.shape());
  scratch_.reshape({1, num_, 5 * hidden_});
}

void LSTMUnitLayer::run_forward(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  auto m = SequenceMath::for_context(ctx);
  m->lstm_unit_forward(num_, hidden_, m->data(*bottom[0]), m->data(*bottom[1]), m->data(*bottom[2]),
                       m->mutable_data(*top[0]), m->mutable_data(*top[1]));
}

void LSTMUnitLayer::run_backward(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  auto m = SequenceMath::for_context(ctx);
  if (propagate_down[2]) m->set(bottom[2]->count(), 0.f, m->mutable_diff(*bottom[2]));  // cont: no gradient
  if (!propagate_down[0] && !propagate_down[1]) return;
  float* unused = m->mutable_data(scratch_);  // (N, 4H) then (N, H)
  float* dx = propagate_down[1] ? m->mutable_diff(*bottom[1]) : unused;                             // (N, 4H)
  float* dc_prev = propagate_down[0] ? m->mutable_diff(*bottom[0]) : unused + 4L * num_ * hidden_;  // (N, H)
  m->lstm_unit_backward(num_, hidden_, m->data(*bottom[0]), m->data(*bottom[1]), m->data(*bottom[2]),
                        m->diff(*top[0]), m->diff(*top[1]), dx, dc_prev);
}

void LSTMUnitLayer::forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  run_forward(ctx, bottom, top);
}

void LSTMUnitLayer::backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  run_backward(ctx, top, propagate_down, bottom);
}

#ifdef CREMA_WITH_CUDA
void LSTMUnitLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  run_forward(ctx, bottom, top);
}

void LSTMUnitLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  run_backward(ctx, top, propagate_down, bottom);
}
#endif

CREMA_REGISTER_LAYER("LSTMUnit", LSTMUnitLayer);

}  // namespace crema
