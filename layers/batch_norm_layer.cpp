#include "layers/batch_norm_layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/math.hpp"
#include "layers/param_blobs.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/batch_norm_kernels.hpp"
#endif

namespace crema {

BatchNormParams BatchNormParams::parse(MapReader r) {
  BatchNormParams p;
  if (r.has("use_global_stats")) p.use_global_stats = r.get_bool("use_global_stats", false);
  // PyTorch's names, whose meaning differs: said so rather than "unknown key".
  r.refuse({"momentum"},
           "BatchNorm's running averages are set by moving_average_fraction, the weight of the old average "
           "(Caffe's default 0.999): PyTorch's momentum m is moving_average_fraction 1 - m (0.1 is 0.9)");
  r.refuse({"affine"},
           "Caffe's BatchNorm only normalises; its learnt scale and shift are a Scale layer after it "
           "(scale_param: {bias_term: true})");
  p.moving_average_fraction = r.get_float("moving_average_fraction", 0.999f);
  // Outside [0, 1] the running averages grow without bound (or flip sign) until they overflow,
  // which the divergence check would blame on the learning rate.
  if (!(p.moving_average_fraction >= 0.f && p.moving_average_fraction <= 1.f))
    r.fail("moving_average_fraction",
           "moving_average_fraction must lie in [0, 1]: it is the weight of the old running average (Caffe's "
           "default 0.999)");
  p.eps = r.get_float("eps", 1e-5f);
  if (p.eps < 0.f) r.fail("eps", "eps must not be negative");
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

BatchNormLayer::BatchNormLayer(const LayerSpec& spec)
    : Layer(spec), params_(BatchNormParams::parse(spec.params("batch_norm_param"))) {
  use_global_stats_ = params_.use_global_stats.value_or(spec.phase == Phase::TEST);
  // The statistics must never be touched by the solver. Caffe's rules: three param
  // entries (the old definition) are frozen by its net upgrade; otherwise missing
  // entries get lr_mult 0 and a non-zero one is an error. The net reads these entries
  // back from the layer.
  auto& param = spec_.param;
  if (param.size() > 3)
    spec_.fail("BatchNorm has 3 blobs (mean, variance, scale factor) but 'param' lists " +
               std::to_string(param.size()));
  for (size_t i = 0; i < param.size(); ++i) {
    if (param.size() != 3 && param[i].lr_mult != 0.f)
      spec_.fail("param[" + std::to_string(i) +
                 "].lr_mult: BatchNorm's statistics are computed, not learnt; set lr_mult: 0 or drop the entry");
    param[i].lr_mult = 0.f;
    param[i].lr_mult_given = true;
    param[i].decay_mult = 0.f;
    param[i].decay_mult_given = true;
  }
  while (param.size() < 3) param.push_back(ParamSpec{"", 0.f, 0.f, true, true});
}

void BatchNormLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  if (ctx.on_gpu() && params_.engine == Engine::CUDNN)
    spec_.fail("BatchNorm has no cuDNN engine: cuDNN's running averages differ from Caffe's; use "
               "batch_norm_param.engine: CAFFE or DEFAULT, which run crema's kernels on " +
               ctx.device().str());
  refuse_onednn_on_gpu(params_.engine, ctx, spec_, "batch_norm_param.engine");
  // Only when asked for: on blobs in plain NCHW, oneDNN's batch normalisation (its
  // generic ncsp kernels) is slower than crema's parallel reference, so DEFAULT is the
  // reference on the CPU.
  if (!ctx.on_gpu() && params_.engine == Engine::ONEDNN) onednn_ = std::make_unique<onednn::BatchNorm>();
  const Blob& x = *bottom[0];
  if (x.num_axes() < 1) spec_.fail("BatchNorm needs a bottom with at least one axis, got a scalar");
  channels_ = x.num_axes() == 1 ? 1 : x.shape(1);
  const FillerSpec zero;  // constant 0
  setup_param_blobs(spec_, blobs_,
                    {{"mean", {channels_}, zero}, {"variance", {channels_}, zero}, {"scale factor", {1}, zero}},
                    ctx.rng());
  for (int i = 0; i < 3; ++i) set_param_propagate_down(i, false);
}

void BatchNormLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if ((x.num_axes() == 1 ? 1 : x.shape(1)) != channels_)
    spec_.fail("BatchNorm layer was set up for " + std::to_string(channels_) + " channels; got a bottom of shape " +
               x.shape_string());
  layout_.outer = x.shape(0);
  layout_.dim = channels_;
  layout_.inner = x.count(std::min(2, x.num_axes()));
  // x - mean(x) over a single value is 0 whatever x is: the top would be the bias alone
  // and no gradient would reach the layers below (PyTorch refuses this too).
  if (!use_global_stats_ && layout_.outer * layout_.inner == 1)
    spec_.fail("the bottom (" + x.shape_string() +
               ") gives batch statistics over 1 value per channel, which normalise every value to 0, so nothing "
               "before this layer would learn; use a batch_size above 1, or use_global_stats: true");
  if (top[0] != bottom[0]) top[0]->reshape_like(x);
  x_norm_.reshape_like(x);
  inv_std_.assign(static_cast<size_t>(channels_), 0.f);
  gpu_stats_.reshape({8, channels_});  // see forward_gpu

  use_onednn_ = false;
  if (onednn_ && x.count() > 0) {
    std::string why = "oneDNN takes 2-D and 4-D bottoms; got shape " + x.shape_string();
    if (x.num_axes() == 2 || x.num_axes() == 4) {
      onednn::BatchNormShape s;
      s.num = x.shape(0);
      s.channels = channels_;
      s.height = x.num_axes() == 4 ? x.shape(2) : 1;
      s.width = x.num_axes() == 4 ? x.shape(3) : 1;
      s.eps = params_.eps;
      s.global_stats = use_global_stats_;
      why = onednn_->prepare(s);
    }
    if (!why.empty() && params_.engine == Engine::ONEDNN)
      spec_.fail("oneDNN cannot compute this BatchNorm (" + why + "); use batch_norm_param.engine: DEFAULT or CAFFE");
    use_onednn_ = why.empty();
    onednn_mean_.assign(static_cast<size_t>(channels_), 0.f);
    onednn_var_.assign(static_cast<size_t>(channels_), 0.f);
  }
}

void BatchNormLayer::global_estimates(std::vector<double>& mean, std::vector<double>& var) const {
  const float* mean_blob = blobs_[0]->cpu_data();  // (C)
  const float* var_blob = blobs_[1]->cpu_data();   // (C)
  const float factor = blobs_[2]->cpu_data()[0];
  const double scale = factor == 0.f ? 0.0 : 1.0 / factor;
  for (size_t c = 0; c < mean.size(); ++c) {
    mean[c] = mean_blob[c] * scale;
    var[c] = var_blob[c] * scale;
  }
}

void BatchNormLayer::update_estimates(const std::vector<double>& mean, const std::vector<double>& var) {
  float* mean_blob = blobs_[0]->mutable_cpu_data();  // (C)
  float* var_blob = blobs_[1]->mutable_cpu_data();   // (C)
  float* factor = blobs_[2]->mutable_cpu_data();     // (1)
  // The running estimates take the unbiased variance (Bessel's correction).
  const double m = static_cast<double>(layout_.outer) * layout_.inner;  // values per channel
  const double correction = m > 1 ? m / (m - 1) : 1.0;
  const float maf = params_.moving_average_fraction;
  factor[0] = factor[0] * maf + 1.f;
  for (size_t c = 0; c < mean.size(); ++c) {
    mean_blob[c] = static_cast<float>(mean[c] + maf * mean_blob[c]);
    var_blob[c] = static_cast<float>(correction * var[c] + maf * var_blob[c]);
  }
}

std::vector<double> BatchNormLayer::statistics(const AxisBroadcast& view, const float* x) {
  std::vector<double> mean(static_cast<size_t>(channels_)), var(mean.size());
  if (use_global_stats_) {
    global_estimates(mean, var);
  } else {
    view.moments(x, mean.data(), var.data());
    update_estimates(mean, var);
  }
  for (size_t c = 0; c < mean.size(); ++c)
    inv_std_[c] = static_cast<float>(1.0 / std::sqrt(var[c] + static_cast<double>(params_.eps)));
  return mean;
}

bool BatchNormLayer::forward_blocked(const BlobVec& bottom, const BlobVec& top) {
  SyncedMemory& x_memory = *bottom[0]->data_memory();
  SyncedMemory& y_memory = *top[0]->data_memory();
  LayoutCopy* x = channel_blocked(x_memory, layout_, *bottom[0]);
  if (!x) return false;
  AxisBroadcast blocked = layout_;
  blocked.block = x->channel_block();
  const std::vector<double> mean = statistics(blocked, x->floats());
  const bool in_place = &x_memory == &y_memory;
  LayoutCopy& y = in_place ? *x_memory.mutable_layout() : top_out_.prepare(*x, y_memory);
  // With global statistics backward needs no normalised values (see the plain path).
  SyncedMemory& norm_memory = *x_norm_.data_memory();
  LayoutCopy* norm = use_global_stats_ ? nullptr : &x_norm_out_.prepare(*x, norm_memory);
  blocked.normalize(x->floats(), mean.data(), inv_std_.data(), y.floats(), norm ? norm->floats() : nullptr);
  if (!in_place) top_out_.commit(y_memory);
  if (norm) x_norm_out_.commit(norm_memory);  // read plain by backward when its gradient comes plain
  return true;
}

bool BatchNormLayer::backward_blocked(const BlobVec& top, const BlobVec& bottom) {
  SyncedMemory& dy_memory = *top[0]->diff_memory();
  SyncedMemory& dx_memory = *bottom[0]->diff_memory();
  LayoutCopy* dy = channel_blocked(dy_memory, layout_, *top[0]);
  LayoutCopy* norm = x_norm_.data_memory()->layout();
  if (!dy || (!use_global_stats_ && !(norm && norm->same_layout(*dy)))) return false;
  AxisBroadcast blocked = layout_;
  blocked.block = dy->channel_block();
  const bool in_place = &dy_memory == &dx_memory;
  LayoutCopy& dx = in_place ? *dx_memory.mutable_layout() : bottom_diff_out_.prepare(*dy, dx_memory);
  if (use_global_stats_)
    blocked.apply(dy->floats(), inv_std_.data(), nullptr, dx.floats());
  else
    blocked.normalize_backward(norm->floats(), dy->floats(), inv_std_.data(), dx.floats());
  if (!in_place) bottom_diff_out_.commit(dx_memory);
  return true;
}

void BatchNormLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  // An empty batch (a Filter that kept no item) has no statistics: dividing by its 0 values
  // would make the running estimates NaN for good, so they stay as they were.
  if (bottom[0]->count() == 0) return;
  if (!use_onednn_ && forward_blocked(bottom, top)) return;
  const size_t C = static_cast<size_t>(channels_);
  const float* x = bottom[0]->cpu_data();  // x: (N, C, S)
  std::vector<double> mean(C), var(C);
  if (use_onednn_) {
    float* saved = x_norm_.mutable_cpu_data();  // (N, C, S): the input, for backward
    cpu_copy(bottom[0]->count(), x, saved);
    if (use_global_stats_) {
      global_estimates(mean, var);
      for (size_t c = 0; c < C; ++c) {
        onednn_mean_[c] = static_cast<float>(mean[c]);
        onednn_var_[c] = static_cast<float>(var[c]);
      }
    }
    onednn_->forward(saved, onednn_mean_.data(), onednn_var_.data(), top[0]->mutable_cpu_data());
    if (use_global_stats_) return;
    mean.assign(onednn_mean_.begin(), onednn_mean_.end());
    var.assign(onednn_var_.begin(), onednn_var_.end());
    update_estimates(mean, var);
    return;
  }
  mean = statistics(layout_, x);
  float* y = top[0]->mutable_cpu_data();  // y: (N, C, S), may alias x
  // Backward with global statistics (TEST nets, frozen BatchNorm) only divides by the
  // deviation: the normalised values are kept only for the batch-statistics gradient,
  // and a forward-only net never allocates them.
  layout_.normalize(x, mean.data(), inv_std_.data(), y, use_global_stats_ ? nullptr : x_norm_.mutable_cpu_data());
}

void BatchNormLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (!use_onednn_ && backward_blocked(top, bottom)) return;
  const float* dy = top[0]->cpu_diff();       // dy: (N, C, S)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N, C, S), may alias dy
  if (use_onednn_)
    return onednn_->backward(x_norm_.cpu_data(), onednn_mean_.data(), onednn_var_.data(), dy, dx);
  // Global statistics are constants: only the division remains.
  if (use_global_stats_)
    layout_.apply(dy, inv_std_.data(), nullptr, dx);
  else
    layout_.normalize_backward(x_norm_.cpu_data(), dy, inv_std_.data(), dx);
}

#ifdef CREMA_WITH_CUDA
namespace {
cuda::BatchNormShape gpu_shape(const AxisBroadcast& layout, const BatchNormParams& p) {
  cuda::BatchNormShape s;
  s.outer = layout.outer;
  s.channels = layout.dim;
  s.inner = layout.inner;
  s.moving_average_fraction = p.moving_average_fraction;
  s.eps = p.eps;
  return s;
}
}  // namespace

void BatchNormLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (bottom[0]->count() == 0) return;  // as forward_cpu
  const cuda::CudaContext& cc = *ctx.cuda();
  const cuda::BatchNormShape s = gpu_shape(layout_, params_);
  const size_t C = static_cast<size_t>(channels_);
  // (8, C) floats: the means and the backward's sums as doubles first (device blocks are
  // 256-byte aligned, so both are 8-byte aligned), then var and inv_std.
  float* stats = gpu_stats_.mutable_gpu_data();
  double* mean = reinterpret_cast<double*>(stats);  // (C)
  float* var = stats + 6 * C;                        // (C)
  float* inv_std = stats + 7 * C;                    // (C)
  const float* x = bottom[0]->gpu_data();            // x: (N, C, S)
  if (use_global_stats_)
    cuda::batch_norm_global_stats(cc, s, blobs_[0]->gpu_data(), blobs_[1]->gpu_data(), blobs_[2]->gpu_data(), mean,
                                  inv_std);
  else
    cuda::batch_norm_batch_stats(cc, s, x, mean, var, blobs_[0]->mutable_gpu_data(), blobs_[1]->mutable_gpu_data(),
                                 blobs_[2]->mutable_gpu_data(), inv_std);
  float* y = top[0]->mutable_gpu_data();  // y: (N, C, S), may alias x
  // With global statistics the gradient only divides: no normalised copy (as on the CPU).
  cuda::batch_norm_normalize(cc, s, x, mean, inv_std, y, use_global_stats_ ? nullptr : x_norm_.mutable_gpu_data());
}

void BatchNormLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const size_t C = static_cast<size_t>(channels_);
  float* stats = gpu_stats_.mutable_gpu_data();             // (8, C) as in forward_gpu
  double* sums = reinterpret_cast<double*>(stats + 2 * C);  // (2, C)
  const float* dy = top[0]->gpu_diff();                     // dy: (N, C, S)
  float* dx = bottom[0]->mutable_gpu_diff();                // dx: (N, C, S), may alias dy
  cuda::batch_norm_backward(*ctx.cuda(), gpu_shape(layout_, params_), use_global_stats_,
                            use_global_stats_ ? nullptr : x_norm_.gpu_data(), dy, stats + 7 * C, sums, dx);
}
#endif

CREMA_REGISTER_LAYER("BatchNorm", BatchNormLayer);

}  // namespace crema
