// Clip: y = max(min, min(x, max)) (clip_param.min and clip_param.max, both required).
// dy/dx = 1 where min <= x <= max (bounds included, as in Caffe), else 0. The test
// needs x, which in place is kept for backward (see kept_input.hpp).
#pragma once

#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

struct ClipParams {
  float min = 0.f, max = 0.f;
  static ClipParams parse(MapReader r);
};

class ClipLayer : public NeuronLayer {
 public:
  explicit ClipLayer(const LayerSpec& spec);
  const char* type() const override { return "Clip"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }

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
  ClipParams params_;
  KeptInput input_;
};

}  // namespace crema
