// Pooling (Caffe's PoolingLayer) over the two spatial axes of (N, C, H, W).
// Output size, Caffe's rule: pooled = ceil((H + 2 pad - k) / stride) + 1 (floor with
// round_mode: FLOOR), minus one when padding would make the last window start in the
// padding, i.e. when (pooled - 1) * stride >= H + pad.
// MAX: the largest value in the window (the first one on ties); its index h * W + w
//   is kept in a mask, which is the second top when there are two.
// AVE: the window sum divided by the window size clipped to the padded image
//   (H + pad), not to the image, so padding counts as zeros but the overhang past
//   the padding does not.
// global_pooling: the window is the whole image (pad 0, stride 1).
// Without padding and with stride > kernel, the ceil rule can place a last window
// wholly past the image; Caffe keeps that output (MAX writes -FLT_MAX with argmax
// -1, which its backward then indexes); crema keeps the size, writes 0 and passes
// no gradient.
#pragma once

#include "engine/layer.hpp"

namespace crema {

struct PoolingParams {
  enum class Method { MAX, AVE, STOCHASTIC };
  enum class RoundMode { CEIL, FLOOR };
  Method pool = Method::MAX;
  int kernel_h = 0, kernel_w = 0;  // 0 with global_pooling: the bottom's size
  int pad_h = 0, pad_w = 0;
  int stride_h = 1, stride_w = 1;
  bool global_pooling = false;
  RoundMode round_mode = RoundMode::CEIL;

  static PoolingParams parse(MapReader r);
};

class PoolingLayer : public Layer {
 public:
  explicit PoolingLayer(const LayerSpec& spec);
  const char* type() const override { return "Pooling"; }
  int exact_num_bottom() const override { return 1; }
  int min_top() const override { return 1; }
  int max_top() const override { return params_.pool == PoolingParams::Method::MAX ? 2 : 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // One pooling window: rows [h0, h1) and columns [w0, w1) of the image, and the
  // divisor AVE uses (the window clipped to the padded image only).
  struct Window {
    int h0, h1, w0, w1, pool_size;
  };
  Window window(int ph, int pw) const;
  // The argmax mask: top[1] when given, else mask_.
  float* mask_data(const BlobVec& top);
  const float* mask_data(const BlobVec& top) const;

  PoolingParams params_;
  int kernel_h_ = 0, kernel_w_ = 0;  // resolved (global pooling: the bottom's size)
  int height_ = 0, width_ = 0, pooled_height_ = 0, pooled_width_ = 0;
  // MAX: index h * W + w of each output's input within its plane, (N, C, PH, PW).
  // Stored as float, like Caffe's mask top; exact while H * W < 2^24.
  Blob mask_;
};

}  // namespace crema
