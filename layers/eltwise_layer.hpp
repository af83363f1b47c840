// Eltwise: combines same-shaped bottoms element by element (eltwise_param.operation):
//   SUM  (default) y = sum_k coeff_k x_k      dx_k = coeff_k dy
//   PROD           y = prod_k x_k             dx_k = dy prod_{j != k} x_j
//   MAX            y = max_k x_k              dx_k = dy where bottom k won, else 0
// coeff (one per bottom, SUM only) defaults to 1. For PROD, stable_prod_grad (default)
// multiplies the other inputs; otherwise the gradient is y / x_k, faster for many
// inputs but wrong when x_k is 0. MAX keeps the index of the winning bottom; on a tie
// the later bottom wins, as in Caffe.
#pragma once

#include <vector>

#include "engine/layer.hpp"

namespace crema {

enum class EltwiseOp { PROD, SUM, MAX };  // Caffe's EltwiseOp order

struct EltwiseParams {
  EltwiseOp operation = EltwiseOp::SUM;
  std::vector<float> coeff;
  bool stable_prod_grad = true;
  static EltwiseParams parse(MapReader r);
};

class EltwiseLayer : public Layer {
 public:
  explicit EltwiseLayer(const LayerSpec& spec);
  const char* type() const override { return "Eltwise"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int min_bottom() const override { return 2; }
  int exact_num_top() const override { return 1; }
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
  EltwiseParams params_;
  std::vector<float> coeffs_;  // (num bottoms): params_.coeff, or all 1
  std::vector<int> max_idx_;   // (count): for MAX, which bottom gave each output
  Blob max_from_;              // (count): the same on the GPU, as floats
  // SUM of bottoms in one layout copy (oneDNN's blocked layout): the top and the
  // gradients stay in it (layers/layout_sum.hpp).
  LayoutOutput top_out_;
  std::vector<LayoutOutput> bottom_diff_out_;  // (num bottoms)
};

}  // namespace crema
