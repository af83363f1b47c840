// MVN, mean-variance normalisation (Caffe's MVNLayer): each image's channels
// (mvn_param.across_channels false, the default), or each whole image (true), is
// shifted to mean 0 and, with normalize_variance (default true), divided by its
// standard deviation plus eps (default 1e-9; added to the deviation, not the
// variance, as in Caffe):
//   y = (x - mean) / (sqrt(mean((x - mean)^2)) + eps)
// Backward, per normalised group of m values:
//   dx = (dy - mean(dy) - y mean(dy y)) / (std + eps)   (normalize_variance)
//   dx = dy - mean(dy)                                   (otherwise)
// which is Caffe's formula (exact up to eps). Runs in place.
#pragma once

#include <vector>

#include "layers/axis_broadcast.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

struct MVNParams {
  bool normalize_variance = true;
  bool across_channels = false;
  float eps = 1e-9f;
  static MVNParams parse(MapReader r);
};

class MVNLayer : public NeuronLayer {
 public:
  explicit MVNLayer(const LayerSpec& spec);
  const char* type() const override { return "MVN"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
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
  MVNParams params_;
  AxisBroadcast layout_;        // the bottom seen as (1, groups, group size)
  std::vector<float> inv_std_;  // (groups): 1 / (std + eps) of the last forward
  Blob gpu_inv_std_;            // (groups): the same, of the last GPU forward
};

}  // namespace crema
