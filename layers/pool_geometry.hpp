// One pooling plane's geometry as every pooling engine sees it: the bottom's and the
// top's plane sizes (Caffe's rounding already applied to the top) and the window.
// The layer computes it once; the CUDA kernels and oneDNN extend it with the batch.
// Plain C++17, so CUDA sources include it too.
#pragma once

namespace crema {

struct PoolGeometry {
  int height = 0, width = 0;                // the bottom's plane
  int pooled_height = 0, pooled_width = 0;  // the top's plane
  int kernel_h = 0, kernel_w = 0, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;

  bool operator==(const PoolGeometry& o) const {
    return height == o.height && width == o.width && pooled_height == o.pooled_height &&
           pooled_width == o.pooled_width && kernel_h == o.kernel_h && kernel_w == o.kernel_w && pad_h == o.pad_h &&
           pad_w == o.pad_w && stride_h == o.stride_h && stride_w == o.stride_w;
  }
};

}  // namespace crema
