#include "layers/im2col.hpp"

#include <algorithm>

namespace crema {

namespace {
// Unsigned compare: a negative index wraps to a huge value, so one test covers both ends.
inline bool inside(int index, int size) { return static_cast<unsigned>(index) < static_cast<unsigned>(size); }
}  // namespace

void im2col(const float* image, const ConvGeometry& g, float* col) {
  // image: (C, H, W); col: (C, kernel_h, kernel_w, out_h, out_w)
  const int out_h = g.out_height(), out_w = g.out_width();
  for (int c = 0; c < g.channels; ++c) {
    const float* plane = image + static_cast<long>(c) * g.height * g.width;  // (H, W)
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        int y = i * g.dilation_h - g.pad_h;
        for (int oh = 0; oh < out_h; ++oh, y += g.stride_h) {
          if (!inside(y, g.height)) {
            std::fill(col, col + out_w, 0.f);
            col += out_w;
            continue;
          }
          int x = j * g.dilation_w - g.pad_w;
          for (int ow = 0; ow < out_w; ++ow, x += g.stride_w)
            *col++ = inside(x, g.width) ? plane[y * g.width + x] : 0.f;
        }
      }
    }
  }
}

void col2im(const float* col, const ConvGeometry& g, float* image) {
  // col: (C, kernel_h, kernel_w, out_h, out_w); image: (C, H, W)
  const int out_h = g.out_height(), out_w = g.out_width();
  std::fill(image, image + static_cast<long>(g.channels) * g.height * g.width, 0.f);
  for (int c = 0; c < g.channels; ++c) {
    float* plane = image + static_cast<long>(c) * g.height * g.width;  // (H, W)
    for (int i = 0; i < g.kernel_h; ++i) {
      for (int j = 0; j < g.kernel_w; ++j) {
        int y = i * g.dilation_h - g.pad_h;
        for (int oh = 0; oh < out_h; ++oh, y += g.stride_h) {
          if (!inside(y, g.height)) {
            col += out_w;
            continue;
          }
          int x = j * g.dilation_w - g.pad_w;
          for (int ow = 0; ow < out_w; ++ow, x += g.stride_w, ++col)
            if (inside(x, g.width)) plane[y * g.width + x] += *col;
        }
      }
    }
  }
}

}  // namespace crema
