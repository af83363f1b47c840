#include "layers/reduction_layer.hpp"

#include <cmath>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

ReductionParams ReductionParams::parse(MapReader r) {
  ReductionParams p;
  p.operation = static_cast<ReductionOp>(r.get_enum("operation", {"SUM", "ASUM", "SUMSQ", "MEAN"}, 0, 1));
  p.axis = r.get_int("axis", 0);
  p.coeff = r.get_float("coeff", 1.f);
  r.finish();
  return p;
}

ReductionLayer::ReductionLayer(const LayerSpec& spec)
    : Layer(spec), params_(ReductionParams::parse(spec.params("reduction_param"))) {}

void ReductionLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) spec_.fail("Reduction layer does not allow in-place computation; give the top its own name");
  const int axis = bottom[0]->canonical_axis(params_.axis);
  const std::vector<int>& shape = bottom[0]->shape();
  top[0]->reshape(std::vector<int>(shape.begin(), shape.begin() + axis));
  num_ = bottom[0]->count(0, axis);
  dim_ = bottom[0]->count(axis);
  coeff_ = params_.coeff;
  if (params_.operation == ReductionOp::MEAN) coeff_ /= static_cast<float>(dim_);
}

void ReductionLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (num, dim)
  float* y = top[0]->mutable_cpu_data();   // y: (num)
  for (int i = 0; i < num_; ++i) {
    const float* row = x + static_cast<size_t>(i) * dim_;  // row: (dim)
    float value = 0.f;
    switch (params_.operation) {
      case ReductionOp::SUM:
      case ReductionOp::MEAN: {
        double sum = 0;
        for (int j = 0; j < dim_; ++j) sum += row[j];
        value = static_cast<float>(sum);
        break;
      }
      case ReductionOp::ASUM: value = cpu_asum(dim_, row); break;
      case ReductionOp::SUMSQ: value = cpu_dot(dim_, row, row); break;
    }
    y[i] = coeff_ * value;
  }
}

void ReductionLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = bottom[0]->cpu_data();     // x: (num, dim)
  const float* dy = top[0]->cpu_diff();       // dy: (num)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (num, dim)
  for (int i = 0; i < num_; ++i) {
    const float* xr = x + static_cast<size_t>(i) * dim_;  // xr: (dim)
    float* dxr = dx + static_cast<size_t>(i) * dim_;      // dxr: (dim)
    const float g = coeff_ * dy[i];
    for (int j = 0; j < dim_; ++j) {
      switch (params_.operation) {
        case ReductionOp::SUM:
        case ReductionOp::MEAN: dxr[j] = g; break;
        case ReductionOp::ASUM: dxr[j] = xr[j] > 0.f ? g : xr[j] < 0.f ? -g : 0.f; break;
        case ReductionOp::SUMSQ: dxr[j] = 2.f * g * xr[j]; break;
      }
    }
  }
}

#ifdef CREMA_WITH_CUDA
namespace {
cuda::Reduce device_op(ReductionOp op) {
  if (op == ReductionOp::ASUM) return cuda::Reduce::asum;
  if (op == ReductionOp::SUMSQ) return cuda::Reduce::sumsq;
  return cuda::Reduce::sum;  // SUM, and MEAN whose 1 / dim is in coeff_
}
}  // namespace

void ReductionLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x: (num, dim); y: (num)
  cuda::reduction_forward(*ctx.cuda(), num_, dim_, device_op(params_.operation), coeff_, bottom[0]->gpu_data(),
                          top[0]->mutable_gpu_data());
}

void ReductionLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // x, dx: (num, dim); dy: (num)
  cuda::reduction_backward(*ctx.cuda(), num_, dim_, device_op(params_.operation), coeff_, bottom[0]->gpu_data(),
                           top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Reduction", ReductionLayer);

}  // namespace crema
