#include "layers/lrn_layer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace crema {

LRNParams LRNParams::parse(MapReader r) {
  LRNParams p;
  p.local_size = r.get_int("local_size", 5);
  if (p.local_size <= 0 || p.local_size % 2 == 0)
    r.fail("local_size", "local_size must be a positive odd number, got " + std::to_string(p.local_size));
  p.alpha = r.get_float("alpha", 1.f);
  p.beta = r.get_float("beta", 0.75f);
  p.k = r.get_float("k", 1.f);
  p.norm_region = static_cast<NormRegion>(r.get_enum("norm_region", {"ACROSS_CHANNELS", "WITHIN_CHANNEL"}, 0, 0));
  if (p.norm_region == NormRegion::WITHIN_CHANNEL && p.k != 1.f)
    r.fail("k",
           "Caffe's WITHIN_CHANNEL LRN ignores k and always adds 1 (scale = 1 + alpha / local_size² * sum of "
           "squares); set k: 1 or leave it out to get what Caffe computes");
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

LRNLayer::LRNLayer(const LayerSpec& spec) : Layer(spec), params_(LRNParams::parse(spec.params("lrn_param"))) {
  const bool across = params_.norm_region == LRNParams::NormRegion::ACROSS_CHANNELS;
  const float n = static_cast<float>(across ? params_.local_size : params_.local_size * params_.local_size);
  shift_ = across ? params_.k : 1.f;
  coef_ = params_.alpha / n;
}

void LRNLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec&) {
  refuse_onednn_on_gpu(params_.engine, ctx, spec_, "lrn_param.engine");
  if (!ctx.on_gpu() && wants_onednn(params_.engine)) onednn_ = std::make_unique<onednn::LRN>();
}

void LRNLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& in = *bottom[0];
  if (in.num_axes() != 4) spec_.fail("LRN needs a 4-D bottom (N, C, H, W), got shape " + in.shape_string());
  // Each output reads its neighbours' inputs, and backward reads both x and y.
  top[0]->reshape_like(in);
  scale_.reshape_like(in);
  work_.reshape_like(in);
  sum_.reshape_like(in);
  if (params_.norm_region == LRNParams::NormRegion::WITHIN_CHANNEL) row_sum_.reshape_like(in);

  use_onednn_ = false;
  if (onednn_ && in.count() > 0) {
    onednn::LrnShape s;
    s.across_channels = params_.norm_region == LRNParams::NormRegion::ACROSS_CHANNELS;
    s.num = in.shape(0);
    s.channels = in.shape(1);
    s.height = in.shape(2);
    s.width = in.shape(3);
    s.local_size = params_.local_size;
    s.alpha = params_.alpha;
    s.beta = params_.beta;
    s.k = shift_;
    const std::string why = onednn_->prepare(s, params_.engine == Engine::ONEDNN);
    if (!why.empty() && params_.engine == Engine::ONEDNN)
      spec_.fail("oneDNN cannot compute this LRN (" + why + "); use lrn_param.engine: DEFAULT or CAFFE");
    use_onednn_ = why.empty();
  }
}

namespace {
// out[o, i, j] = sum of in[o, i', j] over i' in [i - half, i + half] ∩ [0, len).
// in, out: (outer, len, inner), not aliased.
void sum_along(const float* in, int outer, int len, int inner, int half, float* out) {
  for (int o = 0; o < outer; ++o) {
    const float* src = in + static_cast<long>(o) * len * inner;  // (len, inner)
    float* dst = out + static_cast<long>(o) * len * inner;       // (len, inner)
    for (int i = 0; i < len; ++i) {
      float* d = dst + static_cast<long>(i) * inner;  // (inner)
      std::fill(d, d + inner, 0.f);
      for (int i2 = std::max(0, i - half); i2 <= std::min(len - 1, i + half); ++i2) {
        const float* s = src + static_cast<long>(i2) * inner;  // (inner)
        for (int j = 0; j < inner; ++j) d[j] += s[j];
      }
    }
  }
}
}  // namespace

void LRNLayer::window_sum(const float* in, float* out) {
  // in, out: (N, C, H, W)
  const int n = scale_.shape(0), c = scale_.shape(1), h = scale_.shape(2), w = scale_.shape(3);
  const int half = (params_.local_size - 1) / 2;
  if (params_.norm_region == LRNParams::NormRegion::ACROSS_CHANNELS) {
    sum_along(in, n, c, h * w, half, out);
  } else {
    // The square window is separable: sum along each row, then along each column.
    float* rows = row_sum_.mutable_cpu_data();  // (N, C, H, W)
    sum_along(in, n * c * h, w, 1, half, rows);
    sum_along(rows, n * c, h, w, half, out);
  }
}

void LRNLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (use_onednn_) return onednn_->forward(*bottom[0]->data_memory(), *top[0]->data_memory());
  const int count = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();     // x: (N, C, H, W)
  float* y = top[0]->mutable_cpu_data();      // y: (N, C, H, W)
  float* scale = scale_.mutable_cpu_data();   // (N, C, H, W)
  float* squares = work_.mutable_cpu_data();  // (N, C, H, W)
  float* sum = sum_.mutable_cpu_data();       // (N, C, H, W)
  for (int i = 0; i < count; ++i) squares[i] = x[i] * x[i];
  window_sum(squares, sum);
  for (int i = 0; i < count; ++i) {
    scale[i] = shift_ + coef_ * sum[i];
    y[i] = x[i] * std::pow(scale[i], -params_.beta);
  }
}

void LRNLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (use_onednn_)
    return onednn_->backward(*bottom[0]->data_memory(), *top[0]->diff_memory(), *bottom[0]->diff_memory());
  const int count = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();     // x: (N, C, H, W)
  const float* dy = top[0]->cpu_diff();       // dy: (N, C, H, W)
  const float* scale = scale_.cpu_data();     // (N, C, H, W)
  float* ratio = work_.mutable_cpu_data();    // (N, C, H, W)
  float* sum = sum_.mutable_cpu_data();       // (N, C, H, W)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N, C, H, W)
  // y = x scale^-beta, from x rather than read from the top (Caffe reads it), which a later
  // in-place layer may have rewritten; oneDNN's backward works from x too.
  for (int i = 0; i < count; ++i) ratio[i] = dy[i] * x[i] * std::pow(scale[i], -params_.beta) / scale[i];
  window_sum(ratio, sum);
  const float cross = 2.f * coef_ * params_.beta;
  for (int i = 0; i < count; ++i) dx[i] = dy[i] * std::pow(scale[i], -params_.beta) - cross * x[i] * sum[i];
}

#ifdef CREMA_WITH_CUDA
bool LRNLayer::use_cudnn() const {
  const bool possible = params_.norm_region == LRNParams::NormRegion::ACROSS_CHANNELS &&
                        cuda::CudnnLRN::expressible(params_.local_size, params_.k, params_.beta);
  if (params_.engine == Engine::CUDNN && !possible)
    spec_.fail("lrn_param.engine: CUDNN needs norm_region ACROSS_CHANNELS, local_size <= 16, k >= 1e-5 and "
               "beta >= 0.01; use engine: CAFFE or DEFAULT, which run crema's kernels");
  return params_.engine != Engine::CAFFE && possible;
}

cuda::LrnShape LRNLayer::lrn_shape(const Blob& bottom) const {
  cuda::LrnShape s;
  s.num = bottom.shape(0);
  s.channels = bottom.shape(1);
  s.height = bottom.shape(2);
  s.width = bottom.shape(3);
  s.local_size = params_.local_size;
  s.across_channels = params_.norm_region == LRNParams::NormRegion::ACROSS_CHANNELS;
  s.shift = shift_;
  s.coef = coef_;
  s.beta = params_.beta;
  return s;
}

cuda::CudnnLRN& LRNLayer::cudnn(const Blob& bottom) {
  if (!cudnn_) cudnn_ = std::make_unique<cuda::CudnnLRN>();
  cudnn_->prepare(bottom.shape(0), bottom.shape(1), bottom.shape(2), bottom.shape(3), params_.local_size,
                  params_.alpha, params_.beta, params_.k);
  return *cudnn_;
}

void LRNLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (bottom[0]->count() == 0) return;  // cuDNN refuses empty tensors
  const cuda::CudaContext& cc = *ctx.cuda();
  const float* x = bottom[0]->gpu_data();  // x: (N, C, H, W)
  float* y = top[0]->mutable_gpu_data();   // y: (N, C, H, W)
  if (use_cudnn()) {
    cudnn(*bottom[0]).forward(cc, x, y);
    forward_top_ = top[0]->data_memory();
    forward_top_writes_ = top[0]->data_memory()->writes();
    forward_bottom_writes_ = bottom[0]->data_memory()->writes();
  } else {
    cuda::lrn_forward(cc, lrn_shape(*bottom[0]), x, scale_.mutable_gpu_data(), y);
  }
}

void LRNLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0] || bottom[0]->count() == 0) return;
  const cuda::CudaContext& cc = *ctx.cuda();
  const float* x = bottom[0]->gpu_data();     // x: (N, C, H, W)
  const float* dy = top[0]->gpu_diff();       // dy: (N, C, H, W)
  float* dx = bottom[0]->mutable_gpu_diff();  // dx: (N, C, H, W)
  if (use_cudnn()) {
    // cuDNN's backward takes y. Caffe hands it the top, which a later in-place layer
    // (ReLU, Dropout, Scale...) may have rewritten; then y is recomputed from x, so the
    // gradient is right whatever follows, as the CPU's and the kernels' are. A bottom
    // rewritten since forward recomputes y too (cuDNN then differentiates at the new x,
    // where the CPU mixes the new x with forward's scale, as Caffe does).
    cuda::CudnnLRN& lrn = cudnn(*bottom[0]);
    const bool as_left = forward_top_.lock() == top[0]->data_memory() &&
                         top[0]->data_memory()->writes() == forward_top_writes_ &&
                         bottom[0]->data_memory()->writes() == forward_bottom_writes_;
    const float* y = nullptr;  // y: (N, C, H, W)
    if (as_left) {
      y = top[0]->gpu_data();
    } else {
      float* recomputed = work_.mutable_gpu_data();  // (N, C, H, W)
      lrn.forward(cc, x, recomputed);
      y = recomputed;
    }
    lrn.backward(cc, x, y, dy, dx);
  } else
    cuda::lrn_backward(cc, lrn_shape(*bottom[0]), x, dy, scale_.gpu_data(), work_.mutable_gpu_data(), dx);
}
#endif

CREMA_REGISTER_LAYER("LRN", LRNLayer);

}  // namespace crema
