// im2col / col2im for 2-D convolutions (Caffe's im2col_cpu / col2im_cpu), shared by
// Convolution and Deconvolution. im2col lays out every receptive field of the image
// as one column, so that a convolution becomes one matrix product per group:
//   col[(c*kh + i)*kw + j][oh*out_w + ow] = image[c][oh*stride_h - pad_h + i*dilation_h]
//                                                   [ow*stride_w - pad_w + j*dilation_w]
// with zeros where that position lies in the padding.
#pragma once

namespace crema {

// One convolution's geometry on the image that im2col reads from.
struct ConvGeometry {
  int channels = 0, height = 0, width = 0;
  int kernel_h = 1, kernel_w = 1;
  int pad_h = 0, pad_w = 0;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;

  // Height and width of a kernel as it lies on the image, dilation included.
  int extent_h() const { return dilation_h * (kernel_h - 1) + 1; }
  int extent_w() const { return dilation_w * (kernel_w - 1) + 1; }
  // Output size, Caffe's formula. C++ division truncates towards zero, so a kernel
  // that overhangs the padded image by less than a stride still gives one output
  // (reading zeros there), as in Caffe; a result <= 0 means no output fits.
  int out_height() const { return (height + 2 * pad_h - extent_h()) / stride_h + 1; }
  int out_width() const { return (width + 2 * pad_w - extent_w()) / stride_w + 1; }
  // Rows of the column buffer: channels * kernel_h * kernel_w.
  int col_rows() const { return channels * kernel_h * kernel_w; }
};

// image: (channels, height, width) → col: (channels*kernel_h*kernel_w, out_h*out_w).
void im2col(const float* image, const ConvGeometry& g, float* col);
// The adjoint of im2col: image = 0, then every column entry is added back to the
// pixel it was copied from. col: (channels*kernel_h*kernel_w, out_h*out_w) →
// image: (channels, height, width).
void col2im(const float* col, const ConvGeometry& g, float* image);

}  // namespace crema
