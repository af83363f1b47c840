// Dropout (inverted, as Caffe's default): in TRAIN each element is kept with
// probability 1 - p and scaled by 1 / (1 - p), so that TEST is the identity and needs
// no rescaling. With dropout_param.scale_train: false, TRAIN only masks and TEST
// scales by 1 - p instead. The mask is kept for backward; runs in place.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/neuron_layer.hpp"

namespace crema {

struct DropoutParams {
  float dropout_ratio = 0.5f;  // p, the probability of dropping an element
  bool scale_train = true;
  static DropoutParams parse(MapReader r);
};

class DropoutLayer : public NeuronLayer {
 public:
  explicit DropoutLayer(const LayerSpec& spec);
  const char* type() const override { return "Dropout"; }
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
  // What a kept element is multiplied by in TRAIN, and every element in TEST.
  float train_scale() const;
  float test_scale() const;

  DropoutParams params_;
  // mask_: (count) 1 where the element was kept in the last TRAIN forward. A member,
  // not recomputed from the top, because in place the top no longer shows it.
  std::vector<unsigned char> mask_;
  // The seed of the last TRAIN forward on the GPU, whose mask is redrawn from it in
  // backward (see layers/cuda/neuron_kernels.hpp).
  uint64_t gpu_seed_ = 0;
};

}  // namespace crema
