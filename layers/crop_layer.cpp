#include "layers/crop_layer.hpp"

#include <algorithm>
#include <string>

#include "engine/math.hpp"

namespace crema {

CropParams CropParams::parse(MapReader r) {
  CropParams p;
  p.axis = r.get_int("axis", 2);
  p.offset = r.get_ints("offset");
  for (int o : p.offset)
    if (o < 0) r.fail("offset", "offsets must not be negative, got " + std::to_string(o));
  r.finish();
  return p;
}

CropLayer::CropLayer(const LayerSpec& spec) : Layer(spec), params_(CropParams::parse(spec.params("crop_param"))) {}

void CropLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& big = *bottom[0];
  const Blob& like = *bottom[1];
  if (top[0] == bottom[0]) spec_.fail("Crop layer does not allow in-place computation");
  if (big.num_axes() != like.num_axes())
    spec_.fail("both bottoms must have the same number of axes; bottom 0 is " + big.shape_string() + ", bottom 1 is " +
               like.shape_string());
  const int n = big.num_axes();
  if (params_.axis < -n || params_.axis >= n)
    spec_.fail("crop_param.axis " + std::to_string(params_.axis) + " is out of range for a bottom of shape " +
               big.shape_string());
  const int start = big.canonical_axis(params_.axis);
  const size_t cropped = static_cast<size_t>(n - start);
  if (params_.offset.size() > 1 && params_.offset.size() != cropped)
    spec_.fail("crop_param.offset has " + std::to_string(params_.offset.size()) +
               " values; give one for all cropped axes or one per cropped axis (" + std::to_string(cropped) + ")");
  offsets_.assign(static_cast<size_t>(n), 0);
  small_shape_ = big.shape();
  for (int i = start; i < n; ++i) {
    const size_t k = static_cast<size_t>(i - start);
    const int off = params_.offset.empty() ? 0 : params_.offset.size() == 1 ? params_.offset[0] : params_.offset[k];
    if (big.shape(i) - off < like.shape(i))
      spec_.fail("cannot crop axis " + std::to_string(i) + " of bottom 0 (" + big.shape_string() + ") to " +
                 std::to_string(like.shape(i)) + " (bottom 1: " + like.shape_string() + ") at offset " +
                 std::to_string(off));
    offsets_[static_cast<size_t>(i)] = off;
    small_shape_[static_cast<size_t>(i)] = like.shape(i);
  }
  big_shape_ = big.shape();
  top[0]->reshape(small_shape_);
}

void CropLayer::copy_window(const float* from, float* to, bool to_small) const {
  // big: big_shape_; small: small_shape_. Rows along the last axis are contiguous in
  // both, so the window is copied one row at a time, walking the other axes.
  const int n = static_cast<int>(big_shape_.size());
  if (n == 0) {
    *to = *from;
    return;
  }
  const int row = small_shape_.back();
  long rows = 1;
  for (int i = 0; i + 1 < n; ++i) rows *= small_shape_[static_cast<size_t>(i)];
  std::vector<int> index(static_cast<size_t>(n), 0);  // position of the row in the small blob
  for (long r = 0; r < rows; ++r) {
    long big_offset = 0, small_offset = 0;
    for (int i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      big_offset = big_offset * big_shape_[k] + index[k] + offsets_[k];
      small_offset = small_offset * small_shape_[k] + index[k];
    }
    if (to_small)
      cpu_copy(row, from + big_offset, to + small_offset);
    else
      cpu_copy(row, from + small_offset, to + big_offset);
    // Next row: count up the axes before the last, like an odometer.
    for (int i = n - 2; i >= 0; --i) {
      const size_t k = static_cast<size_t>(i);
      if (++index[k] < small_shape_[k]) break;
      index[k] = 0;
    }
  }
}

void CropLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (top[0]->count() == 0) return;
  copy_window(bottom[0]->cpu_data(), top[0]->mutable_cpu_data(), true);  // big_shape_ → small_shape_
}

void CropLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: big_shape_
  std::fill(dx, dx + bottom[0]->count(), 0.f);
  if (top[0]->count() == 0) return;
  copy_window(top[0]->cpu_diff(), dx, false);  // small_shape_ → big_shape_
}

#ifdef CREMA_WITH_CUDA
cuda::CropWindow CropLayer::device_window() const {
  const size_t n = big_shape_.size();
  if (n > static_cast<size_t>(cuda::kMaxCropAxes))
    spec_.fail("Crop on the GPU handles blobs of up to " + std::to_string(cuda::kMaxCropAxes) +
               " axes; bottom 0 has " + std::to_string(n) + " (run this net with solver_mode: CPU)");
  cuda::CropWindow w;
  w.axes = static_cast<int>(n);
  int64_t stride = 1;
  for (size_t k = n; k-- > 0;) {
    w.small_shape[k] = small_shape_[k];
    w.offset[k] = offsets_[k];
    w.big_stride[k] = stride;
    stride *= big_shape_[k];
  }
  return w;
}

void CropLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // big_shape_ → small_shape_
  cuda::crop_forward(*ctx.cuda(), top[0]->count(), device_window(), bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void CropLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // small_shape_ → the window of big_shape_, zeros elsewhere
  cuda::crop_backward(*ctx.cuda(), top[0]->count(), bottom[0]->count(), device_window(), top[0]->gpu_diff(),
                      bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Crop", CropLayer);

}  // namespace crema
