// BatchNorm (Caffe's BatchNormLayer): normalises each channel (axis 1; a 1-D bottom
// is one channel) over the batch and every other axis,
//   y = (x - mean_c) / sqrt(var_c + eps)
// with the batch's own mean and (biased) variance, or, with use_global_stats, the
// stored running estimates. No scale or shift: Caffe puts a Scale layer after it.
// batch_norm_param: use_global_stats (default: false in TRAIN, true in TEST),
// moving_average_fraction (0.999), eps (1e-5).
// Three blobs, Caffe's layout: mean (C), variance (C), scale factor (1). Every
// forward on batch statistics updates them as
//   factor = maf factor + 1,  mean_blob = maf mean_blob + mean,
//   var_blob = maf var_blob + m/(m-1) var   (m = values per channel)
// so the estimates are mean_blob / factor and var_blob / factor (factor 0 gives 0).
// They are statistics, not parameters: the layer gives them lr_mult 0 and
// decay_mult 0 (as Caffe does; an explicit non-zero lr_mult is refused) and computes
// no gradient for them. Backward, with batch statistics:
//   dx = (dy - mean(dy) - y mean(dy y)) / sqrt(var + eps)
// and with global statistics dx = dy / sqrt(var + eps). Runs in place.
// On the CPU, engine DEFAULT and ONEDNN run oneDNN's normalisation on 2-D and 4-D
// bottoms (the reference elsewhere; ONEDNN is refused there), CAFFE and CUDNN the
// reference; the running sums are updated as above either way.
// On a GPU crema's kernels compute exactly this (engine: CAFFE or DEFAULT). cuDNN's
// batch norm keeps an exponential running average without the scale factor, so the
// blobs would not mean what Caffe's mean; engine: CUDNN is refused on a GPU.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "layers/axis_broadcast.hpp"
#include "layers/engine_choice.hpp"
#include "layers/onednn/onednn_batch_norm.hpp"

namespace crema {

struct BatchNormParams {
  std::optional<bool> use_global_stats;  // absent: true in TEST, false in TRAIN
  float moving_average_fraction = 0.999f;
  float eps = 1e-5f;
  Engine engine = Engine::DEFAULT;
  static BatchNormParams parse(MapReader r);
};

class BatchNormLayer : public Layer {
 public:
  explicit BatchNormLayer(const LayerSpec& spec);
  const char* type() const override { return "BatchNorm"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  bool runs_in_place(int top, int bottom) const override { return top == 0 && bottom == 0; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool use_global_stats() const { return use_global_stats_; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  // Mean, variance and the moving-average factor, which a forward on batch statistics updates.
  std::vector<Blob*> updated_by_forward() override {
    if (use_global_stats_) return {};
    return {blobs_[0].get(), blobs_[1].get(), blobs_[2].get()};
  }
  // Whether the CPU runs oneDNN (after reshape).
  bool uses_onednn() const { return use_onednn_; }

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
  BatchNormParams params_;
  bool use_global_stats_ = false;
  int channels_ = 0;
  AxisBroadcast layout_;  // the bottom seen as (N, C, the rest)
  // The stored estimates mean_blob / factor and var_blob / factor, (C) each.
  void global_estimates(std::vector<double>& mean, std::vector<double>& var) const;
  // Folds a batch's mean and biased variance (C) into the running sums.
  void update_estimates(const std::vector<double>& mean, const std::vector<double>& var);
  // The mean (C) to normalise x with, seen through `view` (plain or channel-blocked):
  // the global estimates, or x's own folded into them; sets inv_std_.
  std::vector<double> statistics(const AxisBroadcast& view, const float* x);

  // Kept for backward, since a later in-place layer may overwrite the top (and this
  // layer in place overwrites the bottom): the reference keeps the normalised
  // output, oneDNN the input.
  Blob x_norm_;
  // On a channel-blocked input (a oneDNN convolution's output) the reference runs in
  // that layout: x_norm_ and a top or bottom gradient not in place get these buffers.
  bool forward_blocked(const BlobVec& bottom, const BlobVec& top);
  bool backward_blocked(const BlobVec& top, const BlobVec& bottom);
  LayoutOutput top_out_, x_norm_out_, bottom_diff_out_;
  std::unique_ptr<onednn::BatchNorm> onednn_;  // on the CPU with engine DEFAULT or ONEDNN
  bool use_onednn_ = false;
  std::vector<float> onednn_mean_, onednn_var_;  // (C) each: the statistics oneDNN normalised with
  std::vector<float> inv_std_;  // (C): 1 / sqrt(var + eps) of the last forward
  // The GPU pass's statistics, (8, C) floats: the mean (C doubles), backward's mean(dy)
  // and mean(dy x_norm) (2C doubles), then the variance and 1 / sqrt(var + eps) (C floats each).
  Blob gpu_stats_;
};

}  // namespace crema
