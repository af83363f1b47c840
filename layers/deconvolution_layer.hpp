// Deconvolution (Caffe's DeconvolutionLayer), the transpose of Convolution: every
// bottom pixel stamps the kernel, scaled by its value, onto the top, and overlapping
// stamps add up. Bottom (N, C, H, W), weight (C, num_output/group, kh, kw), bias
// (num_output), top (N, num_output, out_h, out_w) with
//   out = stride (in - 1) + dilation (k - 1) + 1 - 2 pad
// (padding crops the stamped image). Its forward is Convolution's backward-data pass
// and vice versa, so the products come from BaseConvolutionLayer with the top as the
// image im2col reads (reverse_dimensions). Caffe's weight layout, so its
// .caffemodel files (e.g. bilinear upsampling in FCNs) load unchanged.
#pragma once

#include "layers/base_conv_layer.hpp"

namespace crema {

class DeconvolutionLayer : public BaseConvolutionLayer {
 public:
  using BaseConvolutionLayer::BaseConvolutionLayer;
  const char* type() const override { return "Deconvolution"; }

 protected:
  bool reverse_dimensions() const override { return true; }
  std::vector<int> output_spatial_shape(int in_h, int in_w) const override;
};

}  // namespace crema
