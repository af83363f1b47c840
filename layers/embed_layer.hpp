// Embed (Caffe's EmbedLayer): a lookup table. Every value of the bottom (any shape)
// is an index k in [0, input_dim), and the top (bottom shape..., num_output) holds
// row k of the weight (input_dim, num_output), plus the bias (num_output) with
// bias_term (default true). embed_param: num_output, input_dim (both required),
// bias_term, weight_filler, bias_filler (Caffe's default: constant 0).
// The weight's gradient adds each top row to the row it was read from. Indices have
// no gradient. An index outside the table or not a whole number is an error naming
// the layer (Caffe only checks it in debug builds).
#pragma once

#include "engine/filler.hpp"
#include "engine/layer.hpp"

namespace crema {

struct EmbedParams {
  int num_output = 0;
  int input_dim = 0;
  bool bias_term = true;
  FillerSpec weight_filler, bias_filler;
  static EmbedParams parse(MapReader r);
};

class EmbedLayer : public Layer {
 public:
  explicit EmbedLayer(const LayerSpec& spec);
  const char* type() const override { return "Embed"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  bool allow_force_backward(int) const override { return false; }
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
  // The table row that element i of `indices` (bottom 0), holding `value`, names; throws when invalid.
  int row(const Blob& indices, float value, long i) const;

  EmbedParams params_;
  Blob index_check_;  // (3) scratch of the GPU path's index check
  Blob sort_scratch_;  // (2 input_dim + 1 + M) ints: the GPU weight gradient's (reshape_index_scratch)
};

}  // namespace crema
