// Filter (Caffe's FilterLayer): keeps the batch items a selector picks. The last
// bottom is the selector, (N) or (N, 1, ...); every other bottom i (N, ...) gives
// top i holding, in order, the items whose selector value is non-zero, so the tops'
// first dimension changes with the data. At setup, when no data has been read yet,
// the tops get all N items (as in Caffe), so that the layers after can set up.
// Backward copies each kept item's gradient back and zeros the dropped ones; the
// selector has no gradient. On a GPU the selector is still read on the host (as in
// Caffe: it decides the tops' shapes in reshape); the rows are copied on the device.
#pragma once

#include <vector>

#include "engine/layer.hpp"

namespace crema {

class FilterLayer : public Layer {
 public:
  explicit FilterLayer(const LayerSpec& spec) : Layer(spec) {}
  const char* type() const override { return "Filter"; }
  int min_bottom() const override { return 2; }
  int min_top() const override { return 1; }
  bool allow_force_backward(int bottom_index) const override { return bottom_index < selector_index_; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool reshape_is_trial_safe() const override { return false; }

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Consecutive kept items, copied on the device in one go: items [item, item +
  // length) of the bottom are rows [row, row + length) of the top.
  struct Run {
    int item = 0, row = 0, length = 0;
  };
  std::vector<Run> kept_runs() const;
#endif

 private:
  int selector_index_ = 1 << 30;  // the last bottom, once known
  bool first_reshape_ = true;
  std::vector<int> kept_;  // items forwarded, in order
};

}  // namespace crema
