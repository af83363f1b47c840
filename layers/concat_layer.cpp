#include "layers/concat_layer.hpp"

#include <string>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

ConcatParams ConcatParams::parse(MapReader r) {
  ConcatParams p;
  const bool has_axis = r.has("axis");
  p.axis = r.get_int("axis", 1);
  if (r.has("concat_dim")) {
    if (has_axis) r.fail("concat_dim", "either axis or concat_dim should be specified, not both");
    p.concat_dim = r.get_int("concat_dim", 1);
    // concat_dim is unsigned in Caffe: a negative value is almost certainly a mistake.
    if (*p.concat_dim < 0) r.fail("concat_dim", "must not be negative (use axis to count from the end)");
  }
  r.finish();
  return p;
}

ConcatLayer::ConcatLayer(const LayerSpec& spec)
    : Layer(spec), params_(ConcatParams::parse(spec.params("concat_param"))) {}

void ConcatLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  for (Blob* b : bottom)
    if (b == top[0]) spec_.fail("Concat layer does not allow in-place computation");
  const Blob& first = *bottom[0];
  const int num_axes = first.num_axes();
  if (params_.concat_dim) {
    axis_ = *params_.concat_dim;
    if (axis_ >= num_axes)
      spec_.fail("concat_param.concat_dim " + std::to_string(axis_) + " is out of range for a bottom of shape " +
                 first.shape_string());
  } else {
    axis_ = first.canonical_axis(params_.axis);
  }
  std::vector<int> shape = first.shape();
  for (size_t b = 1; b < bottom.size(); ++b) {
    bool same = bottom[b]->num_axes() == num_axes;
    for (int j = 0; same && j < num_axes; ++j) same = j == axis_ || bottom[b]->shape(j) == first.shape(j);
    if (!same)
      spec_.fail("all Concat inputs must have the same shape except along axis " + std::to_string(axis_) +
                 "; bottom 0 is " + first.shape_string() + ", bottom " + std::to_string(b) + " is " +
                 bottom[b]->shape_string());
    shape[static_cast<size_t>(axis_)] += bottom[b]->shape(axis_);
  }
  num_concats_ = first.count(0, axis_);
  inner_ = first.count(axis_ + 1);
  top[0]->reshape(shape);
}

void ConcatLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  float* y = top[0]->mutable_cpu_data();  // y: (num_concats, top_axis, inner)
  const int top_axis = top[0]->shape(axis_);
  int offset = 0;  // where this bottom starts along the axis
  for (Blob* b : bottom) {
    const float* x = b->cpu_data();  // x: (num_concats, bottom_axis, inner)
    const int bottom_axis = b->shape(axis_);
    const int chunk = bottom_axis * inner_;
    for (int n = 0; n < num_concats_; ++n)
      cpu_copy(chunk, x + static_cast<size_t>(n) * chunk,
               y + (static_cast<size_t>(n) * top_axis + static_cast<size_t>(offset)) * inner_);
    offset += bottom_axis;
  }
}

void ConcatLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();  // dy: (num_concats, top_axis, inner)
  const int top_axis = top[0]->shape(axis_);
  int offset = 0;
  for (size_t i = 0; i < bottom.size(); ++i) {
    const int bottom_axis = bottom[i]->shape(axis_);
    if (propagate_down[i]) {
      float* dx = bottom[i]->mutable_cpu_diff();  // dx: (num_concats, bottom_axis, inner)
      const int chunk = bottom_axis * inner_;
      for (int n = 0; n < num_concats_; ++n)
        cpu_copy(chunk, dy + (static_cast<size_t>(n) * top_axis + static_cast<size_t>(offset)) * inner_,
                 dx + static_cast<size_t>(n) * chunk);
    }
    offset += bottom_axis;
  }
}

#ifdef CREMA_WITH_CUDA
void ConcatLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  float* y = top[0]->mutable_gpu_data();  // y: (num_concats, top_axis, inner)
  const int top_axis = top[0]->shape(axis_);
  int offset = 0;  // where this bottom starts along the axis
  for (Blob* b : bottom) {
    const int bottom_axis = b->shape(axis_);
    // x: (num_concats, bottom_axis, inner) into its part of y
    cuda::copy_axis_part_gpu(*ctx.cuda(), num_concats_, top_axis, bottom_axis, offset, inner_, false, b->gpu_data(), y);
    offset += bottom_axis;
  }
}

void ConcatLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  const float* dy = top[0]->gpu_diff();  // dy: (num_concats, top_axis, inner)
  const int top_axis = top[0]->shape(axis_);
  int offset = 0;
  for (size_t i = 0; i < bottom.size(); ++i) {
    const int bottom_axis = bottom[i]->shape(axis_);
    // dx: (num_concats, bottom_axis, inner) from its part of dy
    if (propagate_down[i])
      cuda::copy_axis_part_gpu(*ctx.cuda(), num_concats_, top_axis, bottom_axis, offset, inner_, true, dy,
                               bottom[i]->mutable_gpu_diff());
    offset += bottom_axis;
  }
}
#endif

CREMA_REGISTER_LAYER("Concat", ConcatLayer);

}  // namespace crema
