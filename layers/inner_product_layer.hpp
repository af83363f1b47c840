// InnerProduct (Caffe's InnerProductLayer), a fully connected layer. The bottom is
// flattened from `axis` on into M rows of K = count(axis) values, then
//   top (M, N) = bottom (M, K) · Wᵀ + bias (N)     weight W (N, K)
// or with transpose: true, weight W (K, N) and top = bottom · W. The top keeps the
// bottom's axes before `axis` and adds N. Parameter gradients accumulate (the solver
// zeroes them). On the CPU the products run on oneDNN's matmul (engine DEFAULT or
// ONEDNN; in bf16 under precision: bf16) or OpenBLAS's sgemm (engine CAFFE, the
// reference); on a GPU on cuBLAS.
#pragma once

#include <memory>

#include "engine/filler.hpp"
#include "engine/layer.hpp"
#include "layers/engine_choice.hpp"
#include "layers/onednn/onednn_gemm.hpp"

namespace crema {

struct InnerProductParams {
  int num_output = 0;
  bool bias_term = true;
  FillerSpec weight_filler, bias_filler;
  int axis = 1;
  bool transpose = false;
  Engine engine = Engine::DEFAULT;  // crema's addition (Caffe's InnerProduct has no engine)

  static InnerProductParams parse(MapReader r);
};

class InnerProductLayer : public Layer {
 public:
  explicit InnerProductLayer(const LayerSpec& spec);
  const char* type() const override { return "InnerProduct"; }
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 1; }
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
  InnerProductParams params_;
  int axis_ = 1;  // canonical
  int m_ = 0;     // rows: the product of the bottom's axes before axis_
  int k_ = 0;     // inputs per row, fixed at setup
  int n_ = 0;     // outputs per row: num_output
  // The forward, weight-gradient and data-gradient products on oneDNN (CPU, engine
  // DEFAULT or ONEDNN); use_onednn_ false while they run on OpenBLAS.
  std::unique_ptr<onednn::Gemm> onednn_forward_, onednn_weight_diff_, onednn_input_diff_;
  bool use_onednn_ = false;
  bool bf16_ = false;  // precision: bf16
  // The weights in bfloat16 for the forward's and the input gradient's products, rounded
  // once per change of their values (bf16 on oneDNN only).
  std::unique_ptr<onednn::RoundedCopy> rounded_weights_;
  std::vector<float> ones_;  // (M) of 1: the bias gradient's column sums as a product

  // cpu_gemm's C = op(A) op(B) + beta C (beta 0 or 1), through `gemm` when oneDNN runs.
  // `weights`: b is the weights, which oneDNN takes rounded in bf16.
  void product(onednn::Gemm* gemm, bool trans_a, bool trans_b, int m, int n, int k, const float* a, const float* b,
               float beta, float* c, bool weights = false) const;
};

}  // namespace crema
