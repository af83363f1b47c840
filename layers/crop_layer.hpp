// Crop (Caffe's CropLayer): cuts bottom 0 down to the shape of bottom 1 on the axes
// from crop_param.axis (default 2, the spatial axes of NCHW) to the last; axes before
// it keep bottom 0's size. The window starts at crop_param.offset on each cropped
// axis: none gives 0, one value serves every cropped axis, else one value per
// cropped axis. Bottom 1 only gives the shape (no gradient); backward puts the top's
// gradient back into the window and zeros elsewhere.
#pragma once

#include <vector>

#include "engine/layer.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

struct CropParams {
  int axis = 2;
  std::vector<int> offset;
  static CropParams parse(MapReader r);
};

class CropLayer : public Layer {
 public:
  explicit CropLayer(const LayerSpec& spec);
  const char* type() const override { return "Crop"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  int exact_num_bottom() const override { return 2; }
  int exact_num_top() const override { return 1; }
  bool allow_force_backward(int bottom_index) const override { return bottom_index == 0; }
  bool backward_refuses(int) const override { return false; }  // as Caffe's backward
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  // Where the window starts on each axis of bottom 0 (0 before the crop axis), after reshape.
  const std::vector<int>& offsets() const { return offsets_; }

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  // Copies the window between the big blob (bottom 0's shape) and the small one (the
  // top's): into the small one when `to_small`, else back into the window.
  void copy_window(const float* from, float* to, bool to_small) const;
#ifdef CREMA_WITH_CUDA
  cuda::CropWindow device_window() const;  // the same window for the GPU kernels
#endif

  CropParams params_;
  std::vector<int> offsets_;      // per axis of bottom 0 (0 before the crop axis)
  std::vector<int> big_shape_, small_shape_;
};

}  // namespace crema
