#include "layers/slice_layer.hpp"

#include <string>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/blas_kernels.hpp"
#endif

namespace crema {

SliceParams SliceParams::parse(MapReader r) {
  SliceParams p;
  if (r.has("slice_dim")) {
    if (r.has("axis")) r.fail("slice_dim", "either axis or slice_dim should be specified, not both");
    p.slice_dim = r.get_int("slice_dim", 1);
    // slice_dim is unsigned in Caffe: a negative value is almost certainly a mistake.
    if (*p.slice_dim < 0) r.fail("slice_dim", "must not be negative (use axis to count from the end)");
  }
  p.axis = r.get_int("axis", 1);
  p.slice_point = r.get_ints("slice_point");
  r.finish();
  for (size_t i = 0; i < p.slice_point.size(); ++i)
    if (p.slice_point[i] <= (i == 0 ? 0 : p.slice_point[i - 1]))
      r.fail("slice_point", "must be positive and strictly increasing; got " + std::to_string(p.slice_point[i]) +
                                " at position " + std::to_string(i));
  return p;
}

void copy_axis_part(int outer, int whole_axis, int part_axis, int offset, int inner, bool to_part, const float* from,
                    float* to) {
  // whole: (outer, whole_axis, inner); part: (outer, part_axis, inner)
  const int chunk = part_axis * inner;
  for (int n = 0; n < outer; ++n) {
    const size_t whole_at = (static_cast<size_t>(n) * whole_axis + static_cast<size_t>(offset)) * inner;
    const size_t part_at = static_cast<size_t>(n) * chunk;
    if (to_part)
      cpu_copy(chunk, from + whole_at, to + part_at);
    else
      cpu_copy(chunk, from + part_at, to + whole_at);
  }
}

SliceLayer::SliceLayer(const LayerSpec& spec) : Layer(spec), params_(SliceParams::parse(spec.params("slice_param"))) {}

void SliceLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  for (Blob* t : top)
    if (t == bottom[0]) spec_.fail("Slice layer does not allow in-place computation; give each top its own name");
  const Blob& x = *bottom[0];
  if (params_.slice_dim) {
    axis_ = *params_.slice_dim;
    if (axis_ >= x.num_axes())
      spec_.fail("slice_param.slice_dim " + std::to_string(axis_) + " is out of range for a bottom of shape " +
                 x.shape_string());
  } else {
    axis_ = x.canonical_axis(params_.axis);
  }
  const int length = x.shape(axis_);
  const int num_tops = static_cast<int>(top.size());
  std::vector<int> sizes;
  if (!params_.slice_point.empty()) {
    if (params_.slice_point.size() + 1 != top.size())
      spec_.fail("slice_param.slice_point has " + std::to_string(params_.slice_point.size()) +
                 " value(s); with " + std::to_string(num_tops) + " tops it needs " + std::to_string(num_tops - 1));
    if (params_.slice_point.back() >= length)
      spec_.fail("slice_param.slice_point " + std::to_string(params_.slice_point.back()) +
                 " must be inside axis " + std::to_string(axis_) + " of the bottom, of size " +
                 std::to_string(length) + " (shape " + x.shape_string() + ")");
    int previous = 0;
    for (int point : params_.slice_point) {
      sizes.push_back(point - previous);
      previous = point;
    }
    sizes.push_back(length - previous);
  } else {
    if (length % num_tops != 0)
      spec_.fail("number of top blobs (" + std::to_string(num_tops) + ") should evenly divide input slice axis " +
                 std::to_string(axis_) + " (size " + std::to_string(length) + ", shape " + x.shape_string() +
                 "); or give slice_param.slice_point");
    sizes.assign(top.size(), length / num_tops);
  }
  outer_ = x.count(0, axis_);
  inner_ = x.count(axis_ + 1);
  std::vector<int> shape = x.shape();
  for (size_t i = 0; i < top.size(); ++i) {
    shape[static_cast<size_t>(axis_)] = sizes[i];
    top[i]->reshape(shape);
  }
}

void SliceLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (outer, length, inner)
  const int length = bottom[0]->shape(axis_);
  int offset = 0;
  for (Blob* t : top) {
    const int part = t->shape(axis_);
    // y: (outer, part, inner)
    copy_axis_part(outer_, length, part, offset, inner_, true, x, t->mutable_cpu_data());
    offset += part;
  }
}

void SliceLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (outer, length, inner)
  const int length = bottom[0]->shape(axis_);
  int offset = 0;
  for (Blob* t : top) {
    const int part = t->shape(axis_);
    // dy: (outer, part, inner)
    copy_axis_part(outer_, length, part, offset, inner_, false, t->cpu_diff(), dx);
    offset += part;
  }
}

#ifdef CREMA_WITH_CUDA
void SliceLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->gpu_data();  // x: (outer, length, inner)
  const int length = bottom[0]->shape(axis_);
  int offset = 0;
  for (Blob* t : top) {
    const int part = t->shape(axis_);
    // y: (outer, part, inner)
    cuda::copy_axis_part_gpu(*ctx.cuda(), outer_, length, part, offset, inner_, true, x, t->mutable_gpu_data());
    offset += part;
  }
}

void SliceLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_gpu_diff();  // dx: (outer, length, inner)
  const int length = bottom[0]->shape(axis_);
  int offset = 0;
  for (Blob* t : top) {
    const int part = t->shape(axis_);
    // dy: (outer, part, inner)
    cuda::copy_axis_part_gpu(*ctx.cuda(), outer_, length, part, offset, inner_, false, t->gpu_diff(), dx);
    offset += part;
  }
}
#endif

CREMA_REGISTER_LAYER("Slice", SliceLayer);

}  // namespace crema
