// PReLU (Caffe's PReLULayer): y = max(0, x) + a_c min(0, x) with a learnt slope a_c
// per channel (axis 1 of a bottom with at least 2 axes), or one slope for all with
// prelu_param.channel_shared. The slope blob is (C), or a 0-axis scalar when shared
// (Caffe's shape), filled from prelu_param.filler (default: constant 0.25).
// Gradients: dx = dy (x > 0) + a_c dy (x <= 0); da_c += sum of dy x over x <= 0.
// Runs in place (x is kept for backward, see kept_input.hpp).
#pragma once

#include "engine/filler.hpp"
#include "layers/kept_input.hpp"
#include "layers/neuron_layer.hpp"

namespace crema {

struct PReLUParams {
  bool channel_shared = false;
  FillerSpec filler;
  static PReLUParams parse(MapReader r);
};

class PReLULayer : public NeuronLayer {
 public:
  explicit PReLULayer(const LayerSpec& spec);
  const char* type() const override { return "PReLU"; }
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
  // The slope index of element i of a bottom seen as (N, C, dim).
  int slope_index(int i) const { return params_.channel_shared ? 0 : (i / dim_) % channels_; }

  PReLUParams params_;
  int channels_ = 0, dim_ = 0;  // dim_: elements per channel per image
  KeptInput input_;
};

}  // namespace crema
