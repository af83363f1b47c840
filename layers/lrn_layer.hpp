// LRN, local response normalisation (Caffe's LRNLayer), on (N, C, H, W):
//   top = x * scale^-beta,   scale = shift + alpha / n * (sum of x² over the window)
// ACROSS_CHANNELS: the window is local_size channels centred on x's (zero beyond the
//   first and last channel), n = local_size, shift = k.
// WITHIN_CHANNEL: the window is local_size x local_size pixels of x's own channel,
//   centred and zero-padded, n = local_size², shift = 1. Caffe composes this from
//   Power, average Pooling and Eltwise layers with shift fixed at 1 (k is ignored);
//   crema computes the same directly and rejects k != 1 rather than ignore it.
// Backward, with S the same window sum (the windows are symmetric, so the pixels
// that see x are the ones x sees):
//   dx = dy * scale^-beta - 2 alpha beta / n * x * S(dy * top / scale)
// On the CPU (lrn_param.engine): DEFAULT and ONEDNN run oneDNN, whose LRN is this
// formula; CAFFE and CUDNN the reference.
// On a GPU (lrn_param.engine): CUDNN runs cuDNN's cross-channel LRN (ACROSS_CHANNELS
// with local_size <= 16, k >= 1e-5, beta >= 0.01; refused elsewhere), CAFFE crema's
// kernels for both regions, DEFAULT cuDNN where it applies and the kernels elsewhere.
#pragma once

#include <memory>

#include "engine/layer.hpp"
#include "layers/engine_choice.hpp"
#include "layers/onednn/onednn_lrn.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/cudnn_ops.hpp"
#include "layers/cuda/lrn_kernels.hpp"
#endif

namespace crema {

struct LRNParams {
  enum class NormRegion { ACROSS_CHANNELS, WITHIN_CHANNEL };
  int local_size = 5;
  float alpha = 1.f;
  float beta = 0.75f;
  float k = 1.f;
  NormRegion norm_region = NormRegion::ACROSS_CHANNELS;
  Engine engine = Engine::DEFAULT;

  static LRNParams parse(MapReader r);
};

class LRNLayer : public Layer {
 public:
  explicit LRNLayer(const LayerSpec& spec);
  const char* type() const override { return "LRN"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }

  // Whether the CPU runs oneDNN (after reshape).
  bool uses_onednn() const { return use_onednn_; }
  const onednn::LRN* onednn() const { return onednn_.get(); }  // built, whether used or not

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
  // out = S(in), the sum over each element's window; in, out: (N, C, H, W).
  void window_sum(const float* in, float* out);

  LRNParams params_;
  float shift_ = 1.f;  // k, or 1 within a channel
  float coef_ = 1.f;   // alpha / n
  Blob scale_;         // (N, C, H, W), kept from forward for backward
  Blob work_;          // (N, C, H, W): x², then dy * top / scale (cuDNN: y again)
  Blob sum_;           // (N, C, H, W): S(work_)
  Blob row_sum_;       // (N, C, H, W): WITHIN_CHANNEL's sums along rows
  std::unique_ptr<onednn::LRN> onednn_;  // on the CPU with engine DEFAULT or ONEDNN
  bool use_onednn_ = false;
#ifdef CREMA_WITH_CUDA
  // Whether the GPU pass runs on cuDNN; fails for engine: CUDNN where cuDNN cannot.
  bool use_cudnn() const;
  cuda::LrnShape lrn_shape(const Blob& bottom) const;
  // cuDNN's descriptors, set for the bottom's current shape.
  cuda::CudnnLRN& cudnn(const Blob& bottom);
  std::unique_ptr<cuda::CudnnLRN> cudnn_;
  // The top's data as cuDNN's forward left it, and its and the bottom's write counts
  // then: backward hands the top to cuDNN while neither was written since, else
  // recomputes y from the bottom as it is now.
  std::weak_ptr<SyncedMemory> forward_top_;
  unsigned long long forward_top_writes_ = 0, forward_bottom_writes_ = 0;
#endif
};

}  // namespace crema
