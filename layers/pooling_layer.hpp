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
// On the CPU (pooling_param.engine): DEFAULT and ONEDNN run oneDNN where it computes
// exactly the above: one top (no mask), no window wholly past the image, and for
// AVE either no padding (oneDNN's divisor then counts the pixels in the image) or
// padding no smaller than oneDNN's right padding (the whole kernel); DEFAULT runs the
// reference elsewhere, ONEDNN is refused there. CAFFE and CUDNN run the reference.
// On a GPU (pooling_param.engine): CAFFE runs crema's kernels, which compute exactly
// the above; CUDNN runs cuDNN, which pools to floor sizes, ignores the padding for
// MAX and divides AVE by the whole kernel, so it is used only where that equals
// Caffe's result (the ceil size equals the floor size, no mask top) and refused
// elsewhere; DEFAULT takes cuDNN for such AVE pooling and the kernels otherwise
// (MAX keeps its mask: cuDNN's MAX backward rereads the top, which a later in-place
// layer may have changed).
#pragma once

#include <memory>
#include <string>

#include "engine/layer.hpp"
#include "layers/engine_choice.hpp"
#include "layers/onednn/onednn_pooling.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/cudnn_ops.hpp"
#include "layers/cuda/pooling_kernels.hpp"
#endif

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
  Engine engine = Engine::DEFAULT;

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
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }

  // Whether the CPU runs oneDNN for the current shape (after reshape).
  bool uses_onednn() const { return use_onednn_; }
  const onednn::Pooling* onednn() const { return use_onednn_ ? onednn_.get() : nullptr; }

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
  // oneDNN's primitives on the CPU (engine DEFAULT or ONEDNN), used while the shape
  // is one where oneDNN computes Caffe's result.
  std::unique_ptr<onednn::Pooling> onednn_;
  bool use_onednn_ = false;
  bool past_image_ = false;  // the last window starts past the image (Caffe's ceil rounding, no pad)
  // The oneDNN pooling for the current shape, or "" and why it would differ from Caffe's.
  std::string onednn_shape(const BlobVec& bottom, const BlobVec& top, onednn::PoolShape& s) const;
  // The plane and window every engine pools with.
  PoolGeometry geometry() const;
#ifdef CREMA_WITH_CUDA
  // Whether cuDNN computes Caffe's result for this shape (see the header comment).
  bool cudnn_exact(const BlobVec& top) const;
  // Whether the GPU pass runs on cuDNN; fails for engine: CUDNN where it is not exact.
  bool use_cudnn(const BlobVec& top) const;
  cuda::PoolShape pool_shape(const Blob& bottom) const;
  // cuDNN's descriptors, set for the bottom's current shape.
  cuda::CudnnPooling& cudnn(const Blob& bottom);
  std::unique_ptr<cuda::CudnnPooling> cudnn_;
#endif
};

}  // namespace crema
