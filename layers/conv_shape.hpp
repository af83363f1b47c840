// One convolution as the fast engines (cuDNN, oneDNN) see it: the whole batch of
// the conv input and output, NCHW, weights (Co, Ci/G, kh, kw). Deconvolution hands
// them its top as the conv input. Plain C++17, so CUDA sources include it too.
#pragma once

namespace crema {

struct ConvShape {
  int num = 0;                                 // images
  int in_channels = 0, in_h = 0, in_w = 0;     // the conv input (num, Ci, H, W)
  int out_channels = 0, out_h = 0, out_w = 0;  // the conv output (num, Co, OH, OW)
  int group = 1;
  int kernel_h = 1, kernel_w = 1, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;

  bool operator==(const ConvShape& o) const {
    return num == o.num && in_channels == o.in_channels && in_h == o.in_h && in_w == o.in_w &&
           out_channels == o.out_channels && out_h == o.out_h && out_w == o.out_w && group == o.group &&
           kernel_h == o.kernel_h && kernel_w == o.kernel_w && pad_h == o.pad_h && pad_w == o.pad_w &&
           stride_h == o.stride_h && stride_w == o.stride_w && dilation_h == o.dilation_h &&
           dilation_w == o.dilation_w;
  }
  bool operator!=(const ConvShape& o) const { return !(*this == o); }
};

}  // namespace crema
