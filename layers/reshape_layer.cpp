#include "layers/reshape_layer.hpp"

#include <string>

namespace crema {

ReshapeParams ReshapeParams::parse(MapReader r) {
  ReshapeParams p;
  MapReader shape = r.sub("shape");
  p.dims = shape.get_ints("dim");
  shape.finish();
  bool seen_inferred = false;
  for (int d : p.dims) {
    if (d < -1) shape.fail("dim", "dimensions must be positive, 0 (copy) or -1 (infer); got " + std::to_string(d));
    if (d == -1 && seen_inferred)
      shape.fail("dim", "new shape contains more than one -1; at most one dimension can be inferred");
    seen_inferred = seen_inferred || d == -1;
  }
  p.axis = r.get_int("axis", 0);
  p.num_axes = r.get_int("num_axes", -1);
  r.finish([](const std::string& key) -> std::string {
    return key == "dim" ? "'dim' belongs inside shape: write reshape_param: {shape: {dim: [...]}}" : "";
  });
  if (p.num_axes < -1) r.fail("num_axes", "must be >= 0, or -1 for all axes; got " + std::to_string(p.num_axes));
  return p;
}

ReshapeLayer::ReshapeLayer(const LayerSpec& spec)
    : Layer(spec), params_(ReshapeParams::parse(spec.params("reshape_param"))) {
  for (int i = 0; i < static_cast<int>(params_.dims.size()); ++i) {
    const int d = params_.dims[static_cast<size_t>(i)];
    if (d == 0)
      copy_axes_.push_back(i);
    else if (d == -1)
      inferred_axis_ = i;
    else
      constant_count_ *= d;
  }
}

void ReshapeLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) spec_.fail("Reshape layer does not allow in-place computation");
  const Blob& x = *bottom[0];
  const std::string where = " for a bottom of shape " + x.shape_string();
  // A negative axis counts from the end, where -1 means "after the last axis".
  const int start = params_.axis >= 0 ? params_.axis : x.num_axes() + params_.axis + 1;
  if (start < 0 || start > x.num_axes())
    spec_.fail("reshape_param.axis " + std::to_string(params_.axis) + " is out of range" + where);
  const int end = params_.num_axes == -1 ? x.num_axes() : start + params_.num_axes;
  if (end > x.num_axes())
    spec_.fail("reshape_param.axis + num_axes (" + std::to_string(end) + ") is out of range" + where);

  std::vector<int> shape(x.shape().begin(), x.shape().begin() + start);
  shape.insert(shape.end(), params_.dims.begin(), params_.dims.end());
  shape.insert(shape.end(), x.shape().begin() + end, x.shape().end());
  for (int i : copy_axes_) {
    if (start + i >= x.num_axes())
      spec_.fail("reshape_param.shape has a 0 at position " + std::to_string(i) +
                 " but there is no corresponding bottom axis to copy" + where);
    shape[static_cast<size_t>(start + i)] = x.shape(start + i);
  }
  if (inferred_axis_ >= 0) {
    long long explicit_count = static_cast<long long>(constant_count_) * x.count(0, start) * x.count(end);
    for (int i : copy_axes_) explicit_count *= shape[static_cast<size_t>(start + i)];
    if (explicit_count == 0 || x.count() % explicit_count != 0)
      spec_.fail("bottom count (" + std::to_string(x.count()) +
                 ") must be divisible by the product of the specified dimensions (" + std::to_string(explicit_count) +
                 ")" + where);
    shape[static_cast<size_t>(start + inferred_axis_)] = static_cast<int>(x.count() / explicit_count);
  }
  top[0]->reshape(shape);
  if (top[0]->count() != x.count())
    spec_.fail("reshape_param.shape gives " + top[0]->shape_string() + ", whose count differs from the bottom's" +
               where);
  top[0]->share_data(x);
}

void ReshapeLayer::forward_cpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute: reshape made the top share the bottom's data.
}

void ReshapeLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>&, const BlobVec& bottom) {
  // Shared here rather than in reshape (where Caffe does it), so that whatever zeroes
  // or writes the bottom's gradient before backward cannot touch the top's.
  bottom[0]->share_diff(*top[0]);
}

#ifdef CREMA_WITH_CUDA
// No data moves on either device: the top shares the bottom's data, and backward
// hands the bottom the top's gradient memory, exactly as on the CPU.
void ReshapeLayer::forward_gpu(Context&, const BlobVec&, const BlobVec&) {}

void ReshapeLayer::backward_gpu(Context&, const BlobVec& top, const std::vector<bool>&, const BlobVec& bottom) {
  bottom[0]->share_diff(*top[0]);
}
#endif

CREMA_REGISTER_LAYER("Reshape", ReshapeLayer);

}  // namespace crema
