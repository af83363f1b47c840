#include "layers/eltwise_layer.hpp"

#include <string>

#include "engine/math.hpp"
#include "layers/layout_sum.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

EltwiseParams EltwiseParams::parse(MapReader r) {
  EltwiseParams p;
  p.operation = static_cast<EltwiseOp>(r.get_enum("operation", {"PROD", "SUM", "MAX"}, 1, 0));
  p.coeff = r.get_floats("coeff");
  p.stable_prod_grad = r.get_bool("stable_prod_grad", true);
  r.finish();
  // Caffe rejects coefficients only for PROD and ignores them for MAX; ignoring a
  // setting silently is worse, so crema rejects both.
  if (!p.coeff.empty() && p.operation != EltwiseOp::SUM)
    r.fail("coeff", "Eltwise takes coefficients only for operation SUM");
  return p;
}

EltwiseLayer::EltwiseLayer(const LayerSpec& spec)
    : Layer(spec), params_(EltwiseParams::parse(spec.params("eltwise_param"))) {}

void EltwiseLayer::layer_setup(Context&, const BlobVec& bottom, const BlobVec&) {
  if (!params_.coeff.empty() && params_.coeff.size() != bottom.size())
    spec_.fail("eltwise_param.coeff has " + std::to_string(params_.coeff.size()) +
               " value(s); Eltwise takes one coefficient per bottom blob (" + std::to_string(bottom.size()) + ")");
  coeffs_ = params_.coeff.empty() ? std::vector<float>(bottom.size(), 1.f) : params_.coeff;
}

void EltwiseLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  // Forward overwrites the top before it has read every bottom.
  for (Blob* b : bottom)
    if (b == top[0]) spec_.fail("Eltwise layer does not allow in-place computation");
  for (size_t k = 1; k < bottom.size(); ++k)
    if (bottom[k]->shape() != bottom[0]->shape())
      spec_.fail("Eltwise bottoms must have the same shape; bottom 0 is " + bottom[0]->shape_string() +
                 ", bottom " + std::to_string(k) + " is " + bottom[k]->shape_string());
  top[0]->reshape_like(*bottom[0]);
  if (params_.operation == EltwiseOp::MAX) max_idx_.resize(static_cast<size_t>(bottom[0]->count()));
}

void EltwiseLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (params_.operation == EltwiseOp::SUM) {
    std::vector<SyncedMemory*> in;
    for (Blob* b : bottom) in.push_back(b->data_memory().get());
    if (sum_in_layout(in, coeffs_, *top[0]->data_memory(), top_out_)) return;
  }
  const int n = top[0]->count();
  float* y = top[0]->mutable_cpu_data();  // y: (n); every bottom is (n) too
  switch (params_.operation) {
    case EltwiseOp::PROD: {
      const float* x0 = bottom[0]->cpu_data();
      const float* x1 = bottom[1]->cpu_data();
#pragma omp parallel for simd if (n >= kParallelMinElements)
      for (int i = 0; i < n; ++i) y[i] = x0[i] * x1[i];
      for (size_t k = 2; k < bottom.size(); ++k) {
        const float* xk = bottom[k]->cpu_data();
#pragma omp parallel for simd if (n >= kParallelMinElements)
        for (int i = 0; i < n; ++i) y[i] *= xk[i];
      }
      break;
    }
    case EltwiseOp::SUM: {
      std::vector<const float*> x;  // each (n)
      for (Blob* b : bottom) x.push_back(b->cpu_data());
      cpu_weighted_sum(n, x, coeffs_, y);
      break;
    }
    case EltwiseOp::MAX: {
      int* idx = max_idx_.data();  // idx: (n)
      const float* x0 = bottom[0]->cpu_data();
      const float* x1 = bottom[1]->cpu_data();
#pragma omp parallel for simd if (n >= kParallelMinElements)
      for (int i = 0; i < n; ++i) {
        // Strict > for bottom 0, so a tie goes to bottom 1 (Caffe's rule).
        idx[i] = x0[i] > x1[i] ? 0 : 1;
        y[i] = x0[i] > x1[i] ? x0[i] : x1[i];
      }
      for (size_t k = 2; k < bottom.size(); ++k) {
        const float* xk = bottom[k]->cpu_data();
#pragma omp parallel for simd if (n >= kParallelMinElements)
        for (int i = 0; i < n; ++i)
          if (xk[i] > y[i]) {
            y[i] = xk[i];
            idx[i] = static_cast<int>(k);
          }
      }
      break;
    }
  }
}

void EltwiseLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (params_.operation == EltwiseOp::SUM && top[0]->diff_memory()->layout()) {
    bottom_diff_out_.resize(bottom.size());
    bool done = true;
    for (size_t k = 0; k < bottom.size() && done; ++k)
      if (propagate_down[k])
        done = sum_in_layout({top[0]->diff_memory().get()}, {coeffs_[k]}, *bottom[k]->diff_memory(),
                             bottom_diff_out_[k]);
    if (done) return;  // else the plain loop below redoes every bottom
  }
  const int n = top[0]->count();
  const float* y = top[0]->cpu_data();   // y: (n)
  const float* dy = top[0]->cpu_diff();  // dy: (n)
  for (size_t k = 0; k < bottom.size(); ++k) {
    if (!propagate_down[k]) continue;
    const float* xk = bottom[k]->cpu_data();    // xk: (n)
    float* dx = bottom[k]->mutable_cpu_diff();  // dx: (n)
    switch (params_.operation) {
      case EltwiseOp::PROD:
        if (params_.stable_prod_grad) {
          // The product of the other inputs, without dividing by a possibly-zero x_k.
          bool initialized = false;
          for (size_t j = 0; j < bottom.size(); ++j) {
            if (j == k) continue;
            const float* xj = bottom[j]->cpu_data();  // xj: (n)
            if (!initialized) {
              cpu_copy(n, xj, dx);
            } else {
#pragma omp parallel for simd if (n >= kParallelMinElements)
              for (int i = 0; i < n; ++i) dx[i] *= xj[i];
            }
            initialized = true;
          }
        } else {
#pragma omp parallel for simd if (n >= kParallelMinElements)
          for (int i = 0; i < n; ++i) dx[i] = y[i] / xk[i];
        }
#pragma omp parallel for simd if (n >= kParallelMinElements)
        for (int i = 0; i < n; ++i) dx[i] *= dy[i];
        break;
      case EltwiseOp::SUM: {
        const float c = coeffs_[k];
#pragma omp parallel for simd if (n >= kParallelMinElements)
        for (int i = 0; i < n; ++i) dx[i] = c * dy[i];
        break;
      }
      case EltwiseOp::MAX: {
        const int* idx = max_idx_.data();  // idx: (n)
#pragma omp parallel for simd if (n >= kParallelMinElements)
        for (int i = 0; i < n; ++i) dx[i] = idx[i] == static_cast<int>(k) ? dy[i] : 0.f;
        break;
      }
    }
  }
}

#ifdef CREMA_WITH_CUDA
void EltwiseLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int n = top[0]->count();
  float* y = top[0]->mutable_gpu_data();  // y: (n); every bottom is (n) too
  switch (params_.operation) {
    case EltwiseOp::PROD:
      cuda::gpu_mul(c, n, bottom[0]->gpu_data(), bottom[1]->gpu_data(), y);
      for (size_t k = 2; k < bottom.size(); ++k) cuda::gpu_mul(c, n, y, bottom[k]->gpu_data(), y);
      break;
    case EltwiseOp::SUM:
      cuda::gpu_set(c, n, 0.f, y);
      for (size_t k = 0; k < bottom.size(); ++k) cuda::gpu_axpy(c, n, coeffs_[k], bottom[k]->gpu_data(), y);
      break;
    case EltwiseOp::MAX: {
      max_from_.reshape({n});
      float* from = max_from_.mutable_gpu_data();  // from: (n), the winning bottom's index
      cuda::eltwise_max_first_gpu(c, n, bottom[0]->gpu_data(), bottom[1]->gpu_data(), y, from);
      for (size_t k = 2; k < bottom.size(); ++k)
        cuda::eltwise_max_next_gpu(c, n, bottom[k]->gpu_data(), static_cast<int>(k), y, from);
      break;
    }
  }
}

void EltwiseLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int n = top[0]->count();
  const float* dy = top[0]->gpu_diff();  // dy: (n)
  for (size_t k = 0; k < bottom.size(); ++k) {
    if (!propagate_down[k]) continue;
    float* dx = bottom[k]->mutable_gpu_diff();  // dx: (n)
    switch (params_.operation) {
      case EltwiseOp::PROD:
        if (params_.stable_prod_grad) {
          // The product of the other inputs, without dividing by a possibly-zero x_k.
          bool initialized = false;
          for (size_t j = 0; j < bottom.size(); ++j) {
            if (j == k) continue;
            if (!initialized)
              cuda::gpu_copy(c, n, bottom[j]->gpu_data(), dx);
            else
              cuda::gpu_mul(c, n, dx, bottom[j]->gpu_data(), dx);
            initialized = true;
          }
        } else {
          cuda::gpu_div(c, n, top[0]->gpu_data(), bottom[k]->gpu_data(), dx);
        }
        cuda::gpu_mul(c, n, dx, dy, dx);
        break;
      case EltwiseOp::SUM:
        cuda::gpu_scale_to(c, n, coeffs_[k], dy, dx);
        break;
      case EltwiseOp::MAX:
        cuda::eltwise_max_backward_gpu(c, n, dy, max_from_.gpu_data(), static_cast<int>(k), dx);
        break;
    }
  }
}
#endif

CREMA_REGISTER_LAYER("Eltwise", EltwiseLayer);

}  // namespace crema
