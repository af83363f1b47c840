// InnerProduct (Caffe's InnerProductLayer), a fully connected layer. The bottom is
// flattened from `axis` on into M rows of K = count(axis) values, then
//   top (M, N) = bottom (M, K) · Wᵀ + bias (N)     weight W (N, K)
// or with transpose: true, weight W (K, N) and top = bottom · W. The top keeps the
// bottom's axes before `axis` and adds N. Parameter gradients accumulate (the solver
// zeroes them).
#pragma once

#include <memory>

#include "engine/filler.hpp"
#include "engine/layer.hpp"
#include "layers/onednn/onednn_gemm.hpp"

namespace crema {

struct InnerProductParams {
  int num_output = 0;
  bool bias_term = true;
  FillerSpec weight_filler, bias_filler;
  int axis = 1;
  bool transpose = false;

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
  // precision: bf16 on the CPU: the forward, weight-gradient and data-gradient
  // products on oneDNN in bf16; null in fp32 (OpenBLAS's sgemm).
  std::unique_ptr<onednn::Bf16Gemm> bf16_forward_, bf16_weight_diff_, bf16_input_diff_;

  // cpu_gemm's C = op(A) op(B) + beta C (beta 0 or 1), through `bf16` when given.
  static void product(onednn::Bf16Gemm* bf16, bool trans_a, bool trans_b, int m, int n, int k, const float* a,
                      const float* b, float beta, float* c);
};

}  // namespace crema
