// Im2col (Caffe's Im2colLayer): lays every receptive field of a bottom (N, C, H, W)
// out as a column, the first step of a convolution as a matrix product. It reads
// convolution_param's kernel_size, pad, stride, dilation (one value, or one per
// spatial axis, or the _h/_w pairs) and axis; num_output and the rest are ignored.
// Top (N, C kh kw, out_h, out_w), out = (in + 2 pad - (dilation (k - 1) + 1)) / stride + 1,
// with channel c kernel offset (i, j) at c kh kw + i kw + j; backward is col2im (sums
// the gradients of overlapping windows). Two spatial axes only.
#pragma once

#include "layers/base_conv_layer.hpp"

namespace crema {

class Im2colLayer : public Layer {
 public:
  explicit Im2colLayer(const LayerSpec& spec);
  const char* type() const override { return "Im2col"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
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
  ConvolutionParams params_;
  int axis_ = 1;
  ConvGeometry geometry_;  // channels/height/width: the bottom's, set by reshape
  int num_ = 0, bottom_dim_ = 0, top_dim_ = 0;
};

}  // namespace crema
