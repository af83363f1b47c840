// InfogainLoss: SoftmaxWithLoss generalised by an "information gain" matrix H (K x K,
// K classes), which says how much each predicted class is worth for each true one:
//   loss = -sum_{valid n} sum_k H[label_n, k] log(max(p_{n,k}, 1e-20)) / normalizer,
// p the softmax of the scores along infogain_loss_param.axis (default 1), over every
// position around that axis (as SoftmaxWithLoss). H = identity gives SoftmaxWithLoss.
// H comes from infogain_loss_param.source (a .binaryproto holding K*K values, read at
// setup) or, when given, from a third bottom (read at every pass). loss_param:
// ignore_label, normalization (default VALID); the legacy normalize is refused, as in
// Caffe. Tops: the loss and, optionally, the probabilities.
// Backward: dscores_k = (p_k sum_j H[label, j] - H[label, k]) * w / normalizer, zero at
// ignored positions; w is the loss weight. H and the labels get no gradient.
#pragma once

#include <string>

#include "layers/loss_layer.hpp"

namespace crema {

struct InfogainLossParams {
  std::string source;  // .binaryproto with H; unused when H is the third bottom
  int axis = 1;
  static InfogainLossParams parse(MapReader r);
};

class InfogainLossLayer : public LossLayer {
 public:
  explicit InfogainLossLayer(const LayerSpec& spec);
  const char* type() const override { return "InfogainLoss"; }
  int exact_num_bottom() const override { return -1; }
  int min_bottom() const override { return 2; }
  int max_bottom() const override { return 3; }
  int exact_num_top() const override { return -1; }
  int min_top() const override { return 1; }
  int max_top() const override { return 2; }
  // Only the scores take a gradient: not the labels, not H.
  bool allow_force_backward(int bottom_index) const override { return bottom_index == 0; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
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
  // H: (K, K), from the file or the third bottom.
  const float* infogain(const BlobVec& bottom) const;
  const Blob& infogain_blob(const BlobVec& bottom) const { return bottom.size() == 3 ? *bottom[2] : infogain_; }
  InfogainLossParams params_;
  LossParams loss_params_;
  Blob infogain_;  // H read from source
  Blob prob_;      // (outer, K, inner): kept for backward; the second top shares it
  // The GPU path's scratch: the label check (2), the normalizer forward used (1) and
  // H's row sums (K).
  Blob label_check_, normalizer_, row_sums_;
  int outer_ = 0, num_labels_ = 0, inner_ = 0;
};

}  // namespace crema
