#include "layers/flatten_layer.hpp"

#include <string>
#include <vector>

namespace crema {

FlattenParams FlattenParams::parse(MapReader r) {
  FlattenParams p;
  p.axis = r.get_int("axis", 1);
  p.end_axis = r.get_int("end_axis", -1);
  r.finish();
  return p;
}

FlattenLayer::FlattenLayer(const LayerSpec& spec)
    : Layer(spec), params_(FlattenParams::parse(spec.params("flatten_param"))) {}

void FlattenLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) spec_.fail("Flatten layer does not allow in-place computation");
  const Blob& x = *bottom[0];
  const int start = x.canonical_axis(params_.axis);
  const int end = x.canonical_axis(params_.end_axis);
  if (end < start)
    spec_.fail("flatten_param.end_axis (" + std::to_string(params_.end_axis) + ") comes before axis (" +
               std::to_string(params_.axis) + ") for a bottom of shape " + x.shape_string());
  std::vector<int> shape(x.shape().begin(), x.shape().begin() + start);
  shape.push_back(x.count(start, end + 1));
  shape.insert(shape.end(), x.shape().begin() + end + 1, x.shape().end());
  top[0]->reshape(shape);
  top[0]->share_data(x);
}

void FlattenLayer::forward_cpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute: reshape made the top share the bottom's data.
}

void FlattenLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>&, const BlobVec& bottom) {
  // Shared here rather than in reshape, so that whatever zeroes or writes the bottom's
  // gradient before backward cannot touch the top's.
  bottom[0]->share_diff(*top[0]);
}

#ifdef CREMA_WITH_CUDA
// No data moves on either device: the top shares the bottom's data, and backward
// hands the bottom the top's gradient memory, exactly as on the CPU.
void FlattenLayer::forward_gpu(Context&, const BlobVec&, const BlobVec&) {}

void FlattenLayer::backward_gpu(Context&, const BlobVec& top, const std::vector<bool>&, const BlobVec& bottom) {
  bottom[0]->share_diff(*top[0]);
}
#endif

CREMA_REGISTER_LAYER("Flatten", FlattenLayer);

}  // namespace crema
