// Convolution (Caffe's ConvolutionLayer): every bottom i (N, C, H, W) is convolved
// with the same weight (num_output, C/group, kh, kw) plus bias (num_output) into top i
// (N, num_output, out_h, out_w), out = (in + 2 pad - (dilation (k - 1) + 1)) / stride + 1.
// With group G, output channels [g Co/G, (g+1) Co/G) see only input channels
// [g C/G, (g+1) C/G). Parameter gradients accumulate (the solver zeroes them).
#pragma once

#include "layers/base_conv_layer.hpp"

namespace crema {

class ConvolutionLayer : public BaseConvolutionLayer {
 public:
  using BaseConvolutionLayer::BaseConvolutionLayer;
  const char* type() const override { return "Convolution"; }

 protected:
  bool reverse_dimensions() const override { return false; }
  std::vector<int> output_spatial_shape(int in_h, int in_w) const override;
};

}  // namespace crema
