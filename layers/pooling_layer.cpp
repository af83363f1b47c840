#include "layers/pooling_layer.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>

namespace crema {

PoolingParams PoolingParams::parse(MapReader r) {
  PoolingParams p;
  p.pool = static_cast<Method>(r.get_enum("pool", {"MAX", "AVE", "STOCHASTIC"}, 0, 0));
  if (p.pool == Method::STOCHASTIC) r.fail("pool", "STOCHASTIC pooling is not supported yet; use MAX or AVE");
  p.global_pooling = r.get_bool("global_pooling", false);
  p.round_mode = static_cast<RoundMode>(r.get_enum("round_mode", {"CEIL", "FLOOR"}, 0, 0));

  // Each size is `name` for both axes, or `prefix_h` and `prefix_w` together.
  auto read_pair = [&](const std::string& name, const std::string& prefix, int def, int& h, int& w) {
    const std::string kh = prefix + "_h", kw = prefix + "_w";
    const bool has_one = r.has(name), has_h = r.has(kh), has_w = r.has(kw);
    if (has_one && (has_h || has_w)) r.fail(kh, "give either " + name + " or " + kh + " and " + kw + ", not both");
    if (has_h != has_w) r.fail(has_h ? kw : kh, kh + " and " + kw + " go together; give both");
    h = has_h ? r.get_int(kh, def) : r.get_int(name, def);
    w = has_w ? r.get_int(kw, def) : r.get_int(name, def);
    return has_one || has_h;
  };
  const bool has_kernel = read_pair("kernel_size", "kernel", 0, p.kernel_h, p.kernel_w);
  read_pair("pad", "pad", 0, p.pad_h, p.pad_w);
  read_pair("stride", "stride", 1, p.stride_h, p.stride_w);
  if (p.global_pooling) {
    if (has_kernel) r.fail("kernel_size", "global_pooling pools the whole image; remove the kernel size");
    if (p.pad_h != 0 || p.pad_w != 0 || p.stride_h != 1 || p.stride_w != 1)
      r.fail("global_pooling", "global_pooling needs pad 0 and stride 1");
  } else {
    if (!has_kernel) r.fail("kernel_size", "required key 'kernel_size' (or kernel_h and kernel_w) is missing");
    if (p.kernel_h <= 0 || p.kernel_w <= 0) r.fail("kernel_size", "the kernel size must be positive");
    // Caffe: a window must hold at least one pixel of the image.
    if (p.pad_h >= p.kernel_h || p.pad_w >= p.kernel_w) r.fail("pad", "pad must be smaller than the kernel size");
  }
  if (p.pad_h < 0 || p.pad_w < 0) r.fail("pad", "pad must be non-negative");
  if (p.stride_h <= 0 || p.stride_w <= 0) r.fail("stride", "stride must be positive");
  p.engine = parse_engine(r);
  r.finish();
  return p;
}

PoolingLayer::PoolingLayer(const LayerSpec& spec)
    : Layer(spec), params_(PoolingParams::parse(spec.params("pooling_param"))) {}

namespace {
// Caffe's output size, ceil or floor of (size + 2 pad - kernel) / stride, plus one.
// The span may be negative (a kernel larger than the padded image): with CEIL, Caffe
// still gives one window when the span exceeds -stride. `any_pad` is pad_h || pad_w,
// since Caffe drops a last window that starts in the padding on both axes once
// either axis is padded. Returns <= 0 when no window fits.
int pooled_size(int size, int kernel, int pad, int stride, PoolingParams::RoundMode mode, bool any_pad) {
  const int span = size + 2 * pad - kernel;
  const int down = span >= 0 ? span / stride : -((-span + stride - 1) / stride);  // floor(span / stride)
  const int up = span >= 0 ? (span + stride - 1) / stride : -(-span / stride);    // ceil(span / stride)
  int pooled = (mode == PoolingParams::RoundMode::CEIL ? up : down) + 1;
  if (any_pad && (pooled - 1) * stride >= size + pad) --pooled;
  return pooled;
}
}  // namespace

void PoolingLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& in = *bottom[0];
  if (in.num_axes() != 4) spec_.fail("Pooling needs a 4-D bottom (N, C, H, W), got shape " + in.shape_string());
  height_ = in.shape(2);
  width_ = in.shape(3);
  kernel_h_ = params_.global_pooling ? height_ : params_.kernel_h;
  kernel_w_ = params_.global_pooling ? width_ : params_.kernel_w;
  const bool any_pad = params_.pad_h > 0 || params_.pad_w > 0;
  pooled_height_ = pooled_size(height_, kernel_h_, params_.pad_h, params_.stride_h, params_.round_mode, any_pad);
  pooled_width_ = pooled_size(width_, kernel_w_, params_.pad_w, params_.stride_w, params_.round_mode, any_pad);
  if (pooled_height_ <= 0 || pooled_width_ <= 0)
    spec_.fail("the pooling kernel " + std::to_string(kernel_h_) + "x" + std::to_string(kernel_w_) +
               " does not fit the padded bottom of shape " + in.shape_string());
  // Caffe's ceil rounding without padding keeps a last window that starts past the image:
  // its output is no pooling of anything (crema writes 0; Caffe's MAX leaves -FLT_MAX there).
  const bool past_h = (pooled_height_ - 1) * params_.stride_h - params_.pad_h >= height_;
  const bool past_w = (pooled_width_ - 1) * params_.stride_w - params_.pad_w >= width_;
  past_image_ = past_h || past_w;
  if (past_image_) {
    const std::string warning = fmt::format(
        "Pooling '{}': with kernel {}x{} and stride {}x{} over a {}x{} bottom, the last {} of windows lies wholly "
        "past the image (Caffe's ceil rounding), and crema writes 0 there (Caffe's MAX leaves -3.4e38, its AVE 0); "
        "round_mode: FLOOR drops it (PyTorch's default), or choose a kernel and stride that fit",
        name(), kernel_h_, kernel_w_, params_.stride_h, params_.stride_w, height_, width_,
        past_h && past_w ? "row and column"
        : past_h         ? "row"
                         : "column");
    // Once per layer and geometry in the process: the TRAIN net and each TEST net have their
    // own copy of the layer, and images of their own size reshape it at every batch.
    static std::mutex mutex;
    static std::set<std::string> said;
    const std::lock_guard lock(mutex);
    const std::string geometry = fmt::format("{} {}x{} {}x{} {}x{}", name(), kernel_h_, kernel_w_, params_.stride_h,
                                             params_.stride_w, params_.pad_h, params_.pad_w);
    if (said.insert(geometry).second) spdlog::warn("{}", warning);
  }
  const std::vector<int> shape = {in.shape(0), in.shape(1), pooled_height_, pooled_width_};
  top[0]->reshape(shape);
  if (params_.pool == PoolingParams::Method::MAX) {
    if (static_cast<long>(height_) * width_ >= (1L << 24))
      spec_.fail("MAX pooling keeps argmax indices as floats, exact only for images under 2^24 pixels; got " +
                 in.shape_string());
    if (top.size() > 1)
      top[1]->reshape(shape);
    else
      mask_.reshape(shape);
  }

  use_onednn_ = false;
  if (onednn_ && in.count() > 0) {
    onednn::PoolShape s;
    std::string why = onednn_shape(bottom, top, s);
    if (why.empty()) why = onednn_->prepare(s);
    if (!why.empty() && params_.engine == Engine::ONEDNN)
      spec_.fail("oneDNN cannot compute Caffe's pooling here (" + why +
                 "); use pooling_param.engine: DEFAULT or CAFFE, which run the reference");
    use_onednn_ = why.empty();
  }
}

void PoolingLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec&) {
  refuse_onednn_on_gpu(params_.engine, ctx, spec_, "pooling_param.engine");
  if (ctx.on_gpu() && params_.engine == Engine::CUDNN && params_.pool == PoolingParams::Method::MAX)
    spec_.fail("pooling_param.engine: CUDNN is not offered for MAX pooling: cuDNN's backward finds each maximum "
               "again from the top's values, which a later in-place layer may have changed, and gives ties to "
               "another input than Caffe; use engine: DEFAULT or CAFFE, whose kernels keep the argmax");
  if (!ctx.on_gpu() && wants_onednn(params_.engine)) onednn_ = std::make_unique<onednn::Pooling>();
}

std::string PoolingLayer::onednn_shape(const BlobVec& bottom, const BlobVec& top, onednn::PoolShape& s) const {
  const int pad_h = params_.pad_h, pad_w = params_.pad_w;
  const int last_h = (pooled_height_ - 1) * params_.stride_h - pad_h;  // where the last window starts
  const int last_w = (pooled_width_ - 1) * params_.stride_w - pad_w;
  if (top.size() > 1) return "a mask top is asked for";
  if (past_image_) return "the last window lies wholly past the image";
  using Method = onednn::PoolShape::Method;
  s.method = Method::max;
  if (params_.pool == PoolingParams::Method::AVE) {
    // How far oneDNN pads past the image on the right to give Caffe's size.
    const int right_h = last_h + kernel_h_ - height_, right_w = last_w + kernel_w_ - width_;
    if (pad_h == 0 && pad_w == 0)
      s.method = Method::average_without_padding;
    else if (right_h <= pad_h && right_w <= pad_w)
      s.method = Method::average_with_padding;
    else
      return "an AVE window overhangs the padding, where Caffe's divisor is neither the kernel nor the pixels";
  }
  s.num = bottom[0]->shape(0);
  s.channels = bottom[0]->shape(1);
  static_cast<PoolGeometry&>(s) = geometry();
  return "";
}

PoolGeometry PoolingLayer::geometry() const {
  PoolGeometry g;
  g.height = height_;
  g.width = width_;
  g.pooled_height = pooled_height_;
  g.pooled_width = pooled_width_;
  g.kernel_h = kernel_h_;
  g.kernel_w = kernel_w_;
  g.pad_h = params_.pad_h;
  g.pad_w = params_.pad_w;
  g.stride_h = params_.stride_h;
  g.stride_w = params_.stride_w;
  return g;
}

PoolingLayer::Window PoolingLayer::window(int ph, int pw) const {
  Window win;
  win.h0 = ph * params_.stride_h - params_.pad_h;
  win.w0 = pw * params_.stride_w - params_.pad_w;
  win.h1 = std::min(win.h0 + kernel_h_, height_ + params_.pad_h);
  win.w1 = std::min(win.w0 + kernel_w_, width_ + params_.pad_w);
  win.pool_size = (win.h1 - win.h0) * (win.w1 - win.w0);
  win.h0 = std::max(win.h0, 0);
  win.w0 = std::max(win.w0, 0);
  win.h1 = std::min(win.h1, height_);
  win.w1 = std::min(win.w1, width_);
  return win;
}

float* PoolingLayer::mask_data(const BlobVec& top) {
  return top.size() > 1 ? top[1]->mutable_cpu_data() : mask_.mutable_cpu_data();
}

const float* PoolingLayer::mask_data(const BlobVec& top) const {
  return top.size() > 1 ? top[1]->cpu_data() : mask_.cpu_data();
}

// Empty windows (see the header) give 0 and mask -1.
void PoolingLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (use_onednn_) return onednn_->forward(*bottom[0]->data_memory(), *top[0]->data_memory());
  const int planes = bottom[0]->count(0, 2);
  const int in_plane = height_ * width_, out_plane = pooled_height_ * pooled_width_;
  const float* x = bottom[0]->cpu_data();  // x: (N*C, H, W)
  float* y = top[0]->mutable_cpu_data();   // y: (N*C, PH, PW)
  const bool max = params_.pool == PoolingParams::Method::MAX;
  float* mask = max ? mask_data(top) : nullptr;  // mask: (N*C, PH, PW), index into x's plane or -1
  for (int p = 0; p < planes; ++p, x += in_plane, y += out_plane) {
    for (int ph = 0; ph < pooled_height_; ++ph) {
      for (int pw = 0; pw < pooled_width_; ++pw) {
        const Window win = window(ph, pw);
        const int out = ph * pooled_width_ + pw;
        if (max) {
          // Starts from the window's first pixel; selects rather than branches, since
          // which pixel wins is unpredictable.
          const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
          int best = empty ? -1 : win.h0 * width_ + win.w0;
          float best_value = empty ? 0.f : x[best];
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) {
              const float v = x[h * width_ + w];
              const bool take = v > best_value;
              best = take ? h * width_ + w : best;
              best_value = take ? v : best_value;
            }
          y[out] = best_value;
          mask[p * out_plane + out] = static_cast<float>(best);
        } else {
          float sum = 0.f;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w) sum += x[h * width_ + w];
          y[out] = win.h0 < win.h1 && win.w0 < win.w1 ? sum / static_cast<float>(win.pool_size) : 0.f;
        }
      }
    }
  }
}

void PoolingLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (use_onednn_) return onednn_->backward(*top[0]->diff_memory(), *bottom[0]->diff_memory());
  const int planes = bottom[0]->count(0, 2);
  const int in_plane = height_ * width_, out_plane = pooled_height_ * pooled_width_;
  const float* dy = top[0]->cpu_diff();       // dy: (N*C, PH, PW)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N*C, H, W)
  std::fill(dx, dx + bottom[0]->count(), 0.f);
  if (params_.pool == PoolingParams::Method::MAX) {
    const float* mask = mask_data(top);  // mask: (N*C, PH, PW)
    for (int p = 0; p < planes; ++p, dx += in_plane, dy += out_plane, mask += out_plane)
      for (int out = 0; out < out_plane; ++out)
        if (mask[out] >= 0.f) dx[static_cast<int>(mask[out])] += dy[out];
    return;
  }
  for (int p = 0; p < planes; ++p, dx += in_plane, dy += out_plane) {
    for (int ph = 0; ph < pooled_height_; ++ph) {
      for (int pw = 0; pw < pooled_width_; ++pw) {
        const Window win = window(ph, pw);
        if (win.h0 >= win.h1 || win.w0 >= win.w1) continue;
        const float g = dy[ph * pooled_width_ + pw] / static_cast<float>(win.pool_size);
        for (int h = win.h0; h < win.h1; ++h)
          for (int w = win.w0; w < win.w1; ++w) dx[h * width_ + w] += g;
      }
    }
  }
}

#ifdef CREMA_WITH_CUDA
bool PoolingLayer::cudnn_exact(const BlobVec& top) const {
  // cuDNN's size is floor((size + 2 pad - kernel) / stride) + 1; where Caffe's equals
  // it, no window reaches past the padded image, so AVE's divisor is the whole kernel.
  auto floor_size = [](int size, int kernel, int pad, int stride) {
    return size + 2 * pad >= kernel ? (size + 2 * pad - kernel) / stride + 1 : -1;
  };
  return top.size() == 1 &&
         pooled_height_ == floor_size(height_, kernel_h_, params_.pad_h, params_.stride_h) &&
         pooled_width_ == floor_size(width_, kernel_w_, params_.pad_w, params_.stride_w);
}

bool PoolingLayer::use_cudnn(const BlobVec& top) const {
  switch (params_.engine) {
    case Engine::CAFFE:
      return false;
    case Engine::CUDNN:  // MAX was refused at setup
      if (!cudnn_exact(top))
        spec_.fail("pooling_param.engine: CUDNN cannot compute Caffe's pooling here (output " +
                   std::to_string(pooled_height_) + "x" + std::to_string(pooled_width_) +
                   " rounds up, or a mask top is asked for); use engine: CAFFE or DEFAULT, which run crema's kernels");
      return true;
    case Engine::ONEDNN:  // refused on a GPU at setup
    case Engine::DEFAULT:
      break;
  }
  return params_.pool == PoolingParams::Method::AVE && cudnn_exact(top);
}

cuda::PoolShape PoolingLayer::pool_shape(const Blob& bottom) const {
  cuda::PoolShape s;
  static_cast<PoolGeometry&>(s) = geometry();
  s.planes = bottom.count(0, 2);
  return s;
}

cuda::CudnnPooling& PoolingLayer::cudnn(const Blob& bottom) {
  if (!cudnn_) cudnn_ = std::make_unique<cuda::CudnnPooling>();
  cudnn_->prepare(params_.pool == PoolingParams::Method::AVE, bottom.shape(0), bottom.shape(1), height_, width_,
                  pooled_height_, pooled_width_, kernel_h_, kernel_w_, params_.pad_h, params_.pad_w, params_.stride_h,
                  params_.stride_w);
  return *cudnn_;
}

void PoolingLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (bottom[0]->count() == 0) return;  // cuDNN refuses empty tensors
  const cuda::CudaContext& cc = *ctx.cuda();
  const float* x = bottom[0]->gpu_data();  // x: (N, C, H, W)
  float* y = top[0]->mutable_gpu_data();   // y: (N, C, PH, PW)
  if (use_cudnn(top)) {
    cudnn(*bottom[0]).forward(cc, x, y);
  } else if (params_.pool == PoolingParams::Method::MAX) {
    float* mask = top.size() > 1 ? top[1]->mutable_gpu_data() : mask_.mutable_gpu_data();  // (N, C, PH, PW)
    cuda::max_pool_forward(cc, pool_shape(*bottom[0]), x, y, mask);
  } else {
    cuda::ave_pool_forward(cc, pool_shape(*bottom[0]), x, y);
  }
}

void PoolingLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0] || bottom[0]->count() == 0) return;
  const cuda::CudaContext& cc = *ctx.cuda();
  const float* dy = top[0]->gpu_diff();       // dy: (N, C, PH, PW)
  float* dx = bottom[0]->mutable_gpu_diff();  // dx: (N, C, H, W), overwritten
  if (use_cudnn(top)) {
    cudnn(*bottom[0]).backward(cc, top[0]->gpu_data(), dy, bottom[0]->gpu_data(), dx);
  } else if (params_.pool == PoolingParams::Method::MAX) {
    const float* mask = top.size() > 1 ? top[1]->gpu_data() : mask_.gpu_data();  // (N, C, PH, PW)
    cuda::max_pool_backward(cc, pool_shape(*bottom[0]), dy, mask, dx);
  } else {
    cuda::ave_pool_backward(cc, pool_shape(*bottom[0]), dy, dx);
  }
}
#endif

CREMA_REGISTER_LAYER("Pooling", PoolingLayer);

}  // namespace crema
