// Accuracy: the fraction of positions whose label is among the top_k scores along
// accuracy_param.axis (default 1). A score tied with the true class's counts as
// better, as in Caffe, so ties are scored pessimistically. Positions carrying the
// ignore_label are skipped. An optional second top gives the accuracy per class
// (0 for a class absent from the batch). Not differentiable: backward writes zeros.
#pragma once

#include <optional>

#include "engine/layer.hpp"

namespace crema {

struct AccuracyParams {
  int top_k = 1;
  int axis = 1;
  std::optional<int> ignore_label;
  static AccuracyParams parse(MapReader r);
};

class AccuracyLayer : public Layer {
 public:
  explicit AccuracyLayer(const LayerSpec& spec);
  const char* type() const override { return "Accuracy"; }
  bool has_gradient() const override { return false; }  // piecewise constant
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 2; }
  int min_top() const override { return 1; }
  int max_top() const override { return 2; }
  bool allow_force_backward(int) const override { return false; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  std::optional<LabelUse> label_use() const override { return LabelUse{channels_, params_.ignore_label}; }

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
  AccuracyParams params_;
  int outer_ = 0, channels_ = 0, inner_ = 0;
  Blob counts_;  // GPU only: the device's scratch counts (loss_kernels.hpp)
};

}  // namespace crema
