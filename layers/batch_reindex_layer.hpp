// BatchReindex (Caffe's BatchReindexLayer): picks items of a batch by index. Bottom
// 0 is (N, ...), bottom 1 a 1-D list of K indices into [0, N); top (K, ...) holds
// item idx[k] of bottom 0 at k. Indices may repeat or leave items out. Backward adds
// each top item's gradient to the item it came from. The indices have no gradient;
// one outside [0, N) or not a whole number is an error naming the layer.
#pragma once

#include "engine/layer.hpp"

namespace crema {

class BatchReindexLayer : public Layer {
 public:
  explicit BatchReindexLayer(const LayerSpec& spec) : Layer(spec) {}
  const char* type() const override { return "BatchReindex"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  int exact_num_bottom() const override { return 2; }
  int exact_num_top() const override { return 1; }
  bool allow_force_backward(int bottom_index) const override { return bottom_index == 0; }
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
  int source(const BlobVec& bottom, int k) const;  // the bottom item of top item k
  Blob index_check_;  // (3) scratch of the GPU path's index check
  Blob sort_scratch_;  // (2 N + 1 + K) ints: the GPU input gradient's (reshape_index_scratch)
};

}  // namespace crema
