#include "layers/inner_product_layer.hpp"

#include <string>

#include "engine/math.hpp"
#include "layers/param_blobs.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

InnerProductParams InnerProductParams::parse(MapReader r) {
  InnerProductParams p;
  p.num_output = r.required("num_output").as_int();
  if (p.num_output <= 0) r.fail("num_output", "num_output must be positive");
  p.bias_term = r.get_bool("bias_term", true);
  p.weight_filler = FillerSpec::parse(r.sub("weight_filler"));
  p.bias_filler = FillerSpec::parse(r.sub("bias_filler"));
  p.axis = r.get_int("axis", 1);
  p.transpose = r.get_bool("transpose", false);
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

InnerProductLayer::InnerProductLayer(const LayerSpec& spec)
    : Layer(spec), params_(InnerProductParams::parse(spec.params("inner_product_param"))) {}

void InnerProductLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  const Blob& in = *bottom[0];
  if (params_.axis < -in.num_axes() || params_.axis >= in.num_axes())
    spec_.fail("inner_product_param.axis " + std::to_string(params_.axis) + " is out of range for a bottom of shape " +
               in.shape_string());
  axis_ = in.canonical_axis(params_.axis);
  n_ = params_.num_output;
  k_ = in.count(axis_);
  std::vector<ParamBlobSpec> wanted = {
      {"weight", params_.transpose ? std::vector<int>{k_, n_} : std::vector<int>{n_, k_}, params_.weight_filler}};
  if (params_.bias_term) wanted.push_back({"bias", {n_}, params_.bias_filler});
  setup_param_blobs(spec_, blobs_, wanted, ctx.rng());
  refuse_onednn_on_gpu(params_.engine, ctx, spec_, "inner_product_param.engine");
  bf16_ = wants_bf16(ctx, spec_, params_.engine);
  if (!ctx.on_gpu() && wants_onednn(params_.engine)) {
    onednn_forward_ = std::make_unique<onednn::Gemm>();
    onednn_weight_diff_ = std::make_unique<onednn::Gemm>();
    onednn_input_diff_ = std::make_unique<onednn::Gemm>();
    if (bf16_) rounded_weights_ = std::make_unique<onednn::RoundedCopy>();
  }
}

void InnerProductLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& in = *bottom[0];
  if (in.num_axes() <= axis_ || in.count(axis_) != k_)
    spec_.fail("InnerProduct was set up for " + std::to_string(k_) + " inputs from axis " + std::to_string(axis_) +
               " on; got a bottom of shape " + in.shape_string());
  m_ = in.count(0, axis_);
  std::vector<int> shape(in.shape().begin(), in.shape().begin() + axis_);
  shape.push_back(n_);
  top[0]->reshape(shape);
  use_onednn_ = false;
  if (onednn_forward_ && m_ > 0) {
    const bool t = params_.transpose;
    std::string why = onednn_forward_->prepare(false, !t, m_, n_, k_, false, bf16_, /*b_rounded=*/bf16_);
    if (why.empty())
      why = t ? onednn_weight_diff_->prepare(true, false, k_, n_, m_, true, bf16_)
              : onednn_weight_diff_->prepare(true, false, n_, k_, m_, true, bf16_);
    if (why.empty()) why = onednn_input_diff_->prepare(false, t, m_, k_, n_, false, bf16_, /*b_rounded=*/bf16_);
    if (!why.empty() && bf16_)
      spec_.fail("oneDNN cannot compute this InnerProduct in bf16 (" + why + "); use precision: fp32");
    if (!why.empty() && params_.engine == Engine::ONEDNN)
      spec_.fail("oneDNN cannot compute this InnerProduct (" + why + "); use inner_product_param.engine: DEFAULT or CAFFE");
    use_onednn_ = why.empty();
  }
}

void InnerProductLayer::product(onednn::Gemm* gemm, bool trans_a, bool trans_b, int m, int n, int k, const float* a,
                                const float* b, float beta, float* c, bool weights) const {
  if (use_onednn_ && weights && rounded_weights_)  // b: the weights, blobs_[0]
    gemm->run(a, rounded_weights_->of(blobs_[0]->data_memory(), static_cast<size_t>(blobs_[0]->count())), c);
  else if (use_onednn_)
    gemm->run(a, b, c);  // prepared by reshape with this shape and beta
  else
    cpu_gemm(trans_a, trans_b, m, n, k, 1.f, a, b, beta, c);
}

void InnerProductLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (M, K)
  const float* w = blobs_[0]->cpu_data();  // w: (N, K), or (K, N) with transpose
  float* y = top[0]->mutable_cpu_data();   // y: (M, N)
  product(onednn_forward_.get(), false, !params_.transpose, m_, n_, k_, x, w, 0.f, y, /*weights=*/true);
  if (params_.bias_term) {
    const float* b = blobs_[1]->cpu_data();  // b: (N)
    const int m = m_, n = n_;
#pragma omp parallel for if (static_cast<long>(m) * n >= kParallelMinElements)
    for (int i = 0; i < m; ++i) {
      float* row = y + static_cast<long>(i) * n;  // (N)
#pragma omp simd
      for (int j = 0; j < n; ++j) row[j] += b[j];
    }
  }
}

void InnerProductLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();    // dy: (M, N)
  const float* x = bottom[0]->cpu_data();  // x: (M, K)
  if (param_propagate_down(0)) {
    float* dw = blobs_[0]->mutable_cpu_diff();  // dw: (N, K), or (K, N) with transpose
    if (params_.transpose)
      product(onednn_weight_diff_.get(), true, false, k_, n_, m_, x, dy, 1.f, dw);  // dw += xᵀ dy
    else
      product(onednn_weight_diff_.get(), true, false, n_, k_, m_, dy, x, 1.f, dw);  // dw += dyᵀ x
  }
  if (params_.bias_term && param_propagate_down(1)) {
    float* db = blobs_[1]->mutable_cpu_diff();  // db: (N)
    ones_.resize(static_cast<size_t>(m_), 1.f);
    cpu_gemv(true, m_, n_, 1.f, dy, ones_.data(), 1.f, db);  // db += dyᵀ 1, Caffe's bias multiplier
  }
  if (propagate_down[0]) {
    const float* w = blobs_[0]->cpu_data();     // w: (N, K), or (K, N) with transpose
    float* dx = bottom[0]->mutable_cpu_diff();  // dx: (M, K)
    product(onednn_input_diff_.get(), false, params_.transpose, m_, k_, n_, dy, w, 0.f, dx, /*weights=*/true);
  }
}

#ifdef CREMA_WITH_CUDA
// The CPU's row-major products, through engine/cuda/math_kernels' cuBLAS mapping.
void InnerProductLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const float* x = bottom[0]->gpu_data();  // x: (M, K)
  const float* w = blobs_[0]->gpu_data();  // w: (N, K), or (K, N) with transpose
  float* y = top[0]->mutable_gpu_data();   // y: (M, N)
  cuda::gpu_gemm(c, false, !params_.transpose, m_, n_, k_, 1.f, x, w, 0.f, y);
  // y += b on every row: the broadcast view (outer M, dim N, inner 1), in place.
  if (params_.bias_term) cuda::broadcast_apply_gpu(c, m_, n_, 1, y, nullptr, blobs_[1]->gpu_data(), y);
}

void InnerProductLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  const float* dy = top[0]->gpu_diff();    // dy: (M, N)
  const float* x = bottom[0]->gpu_data();  // x: (M, K)
  if (param_propagate_down(0)) {
    float* dw = blobs_[0]->mutable_gpu_diff();  // dw: (N, K), or (K, N) with transpose
    if (params_.transpose)
      cuda::gpu_gemm(c, true, false, k_, n_, m_, 1.f, x, dy, 1.f, dw);  // dw += xᵀ dy
    else
      cuda::gpu_gemm(c, true, false, n_, k_, m_, 1.f, dy, x, 1.f, dw);  // dw += dyᵀ x
  }
  if (params_.bias_term && param_propagate_down(1))  // db (N) += the column sums of dy
    cuda::broadcast_reduce_gpu(c, m_, n_, 1, dy, nullptr, blobs_[1]->mutable_gpu_diff(), true);
  if (propagate_down[0]) {
    const float* w = blobs_[0]->gpu_data();     // w: (N, K), or (K, N) with transpose
    float* dx = bottom[0]->mutable_gpu_diff();  // dx: (M, K)
    cuda::gpu_gemm(c, false, params_.transpose, m_, k_, n_, 1.f, dy, w, 0.f, dx);
  }
}
#endif

CREMA_REGISTER_LAYER("InnerProduct", InnerProductLayer);

}  // namespace crema
