#include "layers/base_conv_layer.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "engine/math.hpp"
#include "layers/param_blobs.hpp"

namespace crema {

namespace {
// Reads an `x_h`/`x_w` pair into `values` (as two values, for two spatial axes);
// `values` holds what the repeated `x` field gave, which the pair may not join.
void read_hw_pair(MapReader& r, const std::string& name, std::vector<int>& values, bool both_required, int def) {
  const std::string h = name + "_h", w = name + "_w";
  const bool has_h = r.has(h), has_w = r.has(w);
  if (!has_h && !has_w) return;
  if (!values.empty()) r.fail(h, "give either " + name + " or " + h + " and " + w + ", not both");
  if (both_required && !(has_h && has_w)) r.fail(has_h ? w : h, h + " and " + w + " go together; give both");
  values = {r.get_int(h, def), r.get_int(w, def)};
}

void check_all(MapReader& r, const std::string& key, const std::vector<int>& values, int min, const char* what) {
  // Values read from an `x_h`/`x_w` pair are said at their own key (kernel_w: 0, not kernel_size).
  const std::string name = key.substr(0, key.find('_'));
  const bool pair = !r.has(key) && (r.has(name + "_h") || r.has(name + "_w"));
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string at = pair ? name + (i == 0 ? "_h" : "_w") : key;
    if (values[i] < min) r.fail(at, at + " must be " + what + ", got " + std::to_string(values[i]));
  }
}

std::string count_str(size_t n) { return std::to_string(n) + " value" + (n == 1 ? "" : "s"); }
}  // namespace

ConvolutionParams ConvolutionParams::parse(MapReader r, bool needs_num_output) {
  ConvolutionParams p;
  if (needs_num_output) {
    p.num_output = r.required("num_output").as_int();
    if (p.num_output <= 0) r.fail("num_output", "num_output must be positive");
  } else {
    r.allow({"num_output"});
  }
  p.bias_term = r.get_bool("bias_term", true);

  p.kernel_size = r.get_ints("kernel_size");
  read_hw_pair(r, "kernel", p.kernel_size, true, 0);
  if (p.kernel_size.empty()) r.fail("kernel_size", "required key 'kernel_size' (or kernel_h and kernel_w) is missing");
  check_all(r, "kernel_size", p.kernel_size, 1, "positive");

  // Caffe: a missing pad_h or pad_w is 0; a lone stride_h or stride_w would leave
  // the other at 0, which is never valid, so both are required.
  p.pad = r.get_ints("pad");
  read_hw_pair(r, "pad", p.pad, false, 0);
  check_all(r, "pad", p.pad, 0, "non-negative");
  p.stride = r.get_ints("stride");
  read_hw_pair(r, "stride", p.stride, true, 1);
  check_all(r, "stride", p.stride, 1, "positive");
  p.dilation = r.get_ints("dilation");
  check_all(r, "dilation", p.dilation, 1, "positive");

  p.group = r.get_int("group", 1);
  if (p.group <= 0) r.fail("group", "group must be positive");
  p.axis = r.get_int("axis", 1);
  p.weight_filler = FillerSpec::parse(r.sub("weight_filler"));
  p.bias_filler = FillerSpec::parse(r.sub("bias_filler"));
  p.engine = parse_engine(r);
  p.cudnn_workspace_limit_mb = r.get_int("cudnn_workspace_limit_mb", p.cudnn_workspace_limit_mb);
  if (p.cudnn_workspace_limit_mb < 0)
    r.fail("cudnn_workspace_limit_mb", "cudnn_workspace_limit_mb must be 0 or more (MiB), got " +
                                           std::to_string(p.cudnn_workspace_limit_mb));
  // force_nd_im2col only picks Caffe's implementation; the result is the same.
  r.allow({"force_nd_im2col"});
  r.finish();
  return p;
}

ConvGeometry ConvolutionParams::spatial_geometry(const LayerSpec& spec) const {
  // One value for every spatial axis, or one per axis (here: exactly two).
  auto per_axis = [&](const std::vector<int>& v, const char* key, int def, int& h, int& w) {
    if (v.size() > 2)
      spec.fail("convolution_param." + std::string(key) + " has " + count_str(v.size()) +
                "; give one, or one per spatial axis (2)");
    h = v.empty() ? def : v[0];
    w = v.empty() ? def : v.back();
  };
  ConvGeometry g;
  per_axis(kernel_size, "kernel_size", 1, g.kernel_h, g.kernel_w);
  per_axis(pad, "pad", 0, g.pad_h, g.pad_w);
  per_axis(stride, "stride", 1, g.stride_h, g.stride_w);
  per_axis(dilation, "dilation", 1, g.dilation_h, g.dilation_w);
  return g;
}

std::vector<int> conv_output_size(ConvGeometry g, int in_h, int in_w, const LayerSpec& spec) {
  g.height = in_h;
  g.width = in_w;
  // ConvGeometry's formula in 64 bits: a huge dilation or pad (a typo) must not wrap around.
  const auto extent = [](long long kernel, long long dilation) { return dilation * (kernel - 1) + 1; };
  const auto out = [&](long long in, long long pad, long long kernel, long long dilation, long long stride) {
    return (in + 2 * pad - extent(kernel, dilation)) / stride + 1;
  };
  // im2col and cuDNN take the padded size and the kernel's extent as 32-bit integers.
  const long long padded_h = in_h + 2LL * g.pad_h, padded_w = in_w + 2LL * g.pad_w;
  const long long extent_h = extent(g.kernel_h, g.dilation_h), extent_w = extent(g.kernel_w, g.dilation_w);
  if (std::max({padded_h, padded_w, extent_h, extent_w}) > INT_MAX)
    spec.fail("the padded input (" + std::to_string(padded_h) + "x" + std::to_string(padded_w) +
              ") or the kernel's extent with dilation (" + std::to_string(extent_h) + "x" + std::to_string(extent_w) +
              ") is beyond 32-bit sizes; check pad and dilation");
  const long long out_h = out(in_h, g.pad_h, g.kernel_h, g.dilation_h, g.stride_h);
  const long long out_w = out(in_w, g.pad_w, g.kernel_w, g.dilation_w, g.stride_w);
  if (out_h <= 0 || out_w <= 0) {
    const bool dilated = g.dilation_h > 1 || g.dilation_w > 1;
    spec.fail("the kernel (" + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) +
              (dilated ? ", spanning " + std::to_string(extent(g.kernel_h, g.dilation_h)) + "x" +
                             std::to_string(extent(g.kernel_w, g.dilation_w)) + " with dilation " +
                             std::to_string(g.dilation_h) + "x" + std::to_string(g.dilation_w)
                       : std::string()) +
              ") does not fit the padded input (" + std::to_string(in_h + 2LL * g.pad_h) + "x" +
              std::to_string(in_w + 2LL * g.pad_w) + "); use a smaller kernel" + (dilated ? " or dilation" : "") +
              ", more pad, or a larger input");
  }
  return {static_cast<int>(out_h), static_cast<int>(out_w)};
}

BaseConvolutionLayer::BaseConvolutionLayer(const LayerSpec& spec)
    : Layer(spec), params_(ConvolutionParams::parse(spec.params("convolution_param"))) {}

void BaseConvolutionLayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const std::string type_name = type();
  if (top.size() != bottom.size())
    spec_.fail(type_name + " layer needs one top per bottom, got " + std::to_string(bottom.size()) + " bottom(s) and " +
               std::to_string(top.size()) + " top(s)");
  if (ctx.on_gpu() && params_.engine == Engine::CAFFE)
    spec_.fail(type_name + " has no hand-written GPU kernel (convolution_param.engine: CAFFE); use engine: CUDNN " +
               "or DEFAULT on " + ctx.device().str() + ", or run on the CPU");
  refuse_onednn_on_gpu(params_.engine, ctx, spec_, "convolution_param.engine");
  bf16_ = wants_bf16(ctx, spec_, params_.engine);
  if (!ctx.on_gpu() && wants_onednn(params_.engine)) onednn_ = std::make_unique<onednn::Convolution>();
  const Blob& in = *bottom[0];
  if (params_.axis < -in.num_axes() || params_.axis >= in.num_axes())
    spec_.fail("convolution_param.axis " + std::to_string(params_.axis) + " is out of range for a bottom of shape " +
               in.shape_string());
  axis_ = in.canonical_axis(params_.axis);
  const int axis = axis_;
  if (in.num_axes() - axis - 1 != 2)
    spec_.fail(type_name +
               " supports two spatial axes only (bottoms (N, C, H, W) with axis 1); got a bottom of shape " +
               in.shape_string() + " with axis " + std::to_string(params_.axis));

  geometry_ = params_.spatial_geometry(spec_);
  const ConvGeometry& g = geometry_;
  is_1x1_ = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;

  channels_ = in.shape(axis);
  const int group = params_.group;
  if (channels_ % group != 0)
    spec_.fail("the bottom's " + std::to_string(channels_) + " channels do not divide into group " +
               std::to_string(group));
  if (params_.num_output % group != 0)
    spec_.fail("num_output " + std::to_string(params_.num_output) + " does not divide into group " +
               std::to_string(group));
  conv_out_channels_ = reverse_dimensions() ? channels_ : params_.num_output;
  conv_in_channels_ = reverse_dimensions() ? params_.num_output : channels_;
  kernel_dim_ = conv_in_channels_ / group * g.kernel_h * g.kernel_w;
  weight_offset_ = conv_out_channels_ * kernel_dim_ / group;

  std::vector<ParamBlobSpec> wanted = {
      {"weight", {conv_out_channels_, conv_in_channels_ / group, g.kernel_h, g.kernel_w}, params_.weight_filler}};
  if (params_.bias_term) wanted.push_back({"bias", {params_.num_output}, params_.bias_filler});
  setup_param_blobs(spec_, blobs_, wanted, ctx.rng());
}

void BaseConvolutionLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& in = *bottom[0];
  const int axis = axis_;  // fixed at setup, like the number of axes
  if (in.num_axes() != axis + 3 || in.shape(axis) != channels_)
    spec_.fail(std::string(type()) + " layer was set up for " + std::to_string(channels_) +
               " channels and two spatial axes; got a bottom of shape " + in.shape_string());
  for (size_t i = 1; i < bottom.size(); ++i)
    if (bottom[i]->shape() != in.shape())
      spec_.fail("all bottoms must have the same shape; bottom 0 is " + in.shape_string() + ", bottom " +
                 std::to_string(i) + " is " + bottom[i]->shape_string());
  num_ = in.count(0, axis);
  const int in_h = in.shape(axis + 1), in_w = in.shape(axis + 2);
  std::vector<int> top_shape(in.shape().begin(), in.shape().begin() + axis);
  top_shape.push_back(params_.num_output);
  for (int d : output_spatial_shape(in_h, in_w)) top_shape.push_back(d);
  for (Blob* t : top) t->reshape(top_shape);

  bottom_dim_ = in.count(axis);
  top_dim_ = top[0]->count(axis);
  out_spatial_dim_ = top[0]->count(axis + 1);
  // The conv input is the image im2col reads: the bottom, or the top when reversed.
  const Blob& conv_input = reverse_dimensions() ? *top[0] : in;
  geometry_.channels = conv_in_channels_;
  geometry_.height = conv_input.shape(axis + 1);
  geometry_.width = conv_input.shape(axis + 2);
  conv_out_spatial_dim_ = reverse_dimensions() ? in.count(axis + 1) : out_spatial_dim_;
  // The column buffer holds (Ci·kh·kw) × S_out floats; refuse shapes whose product
  // would overflow int before the Blob could say so.
  if (static_cast<long long>(kernel_dim_) * params_.group * conv_out_spatial_dim_ > INT_MAX)
    spec_.fail("the im2col buffer for this input (" + std::to_string(kernel_dim_ * 1LL * params_.group) + " x " +
               std::to_string(conv_out_spatial_dim_) + ") exceeds 2^31 elements; use a smaller input or kernel");
  col_offset_ = kernel_dim_ * conv_out_spatial_dim_;
  output_offset_ = conv_out_channels_ * conv_out_spatial_dim_ / params_.group;
  col_buffer_.reshape({kernel_dim_ * params_.group, conv_out_spatial_dim_});

  use_onednn_ = false;
  if (onednn_ && num_ > 0) {
    // oneDNN's bias is on the conv output; Deconvolution's is on the conv input.
    const std::string why = onednn_->prepare(conv_shape(), params_.bias_term && !reverse_dimensions(), bf16_);
    if (!why.empty() && bf16_)
      spec_.fail("oneDNN cannot compute this " + std::string(type()) + " in bf16 (" + why + "); use precision: fp32");
    if (!why.empty() && params_.engine == Engine::ONEDNN)
      spec_.fail("oneDNN cannot compute this " + std::string(type()) + " (" + why +
                 "); use convolution_param.engine: DEFAULT or CAFFE");
    use_onednn_ = why.empty();
  }
}

ConvShape BaseConvolutionLayer::conv_shape() const {
  const ConvGeometry& g = geometry_;  // the conv input's channels and size, set by reshape
  ConvShape s;
  s.num = num_;
  s.in_channels = conv_in_channels_;
  s.in_h = g.height;
  s.in_w = g.width;
  s.out_channels = conv_out_channels_;
  s.out_h = g.out_height();
  s.out_w = g.out_width();
  s.group = params_.group;
  s.kernel_h = g.kernel_h;
  s.kernel_w = g.kernel_w;
  s.pad_h = g.pad_h;
  s.pad_w = g.pad_w;
  s.stride_h = g.stride_h;
  s.stride_w = g.stride_w;
  s.dilation_h = g.dilation_h;
  s.dilation_w = g.dilation_w;
  return s;
}

void BaseConvolutionLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (use_onednn_) return forward_onednn(bottom, top);
  // weight: Convolution (Co, C/G, kh, kw), Deconvolution (C, Co/G, kh, kw)
  const float* weight = blobs_[0]->cpu_data();
  const float* bias = params_.bias_term ? blobs_[1]->cpu_data() : nullptr;  // (Co)
  for (size_t i = 0; i < bottom.size(); ++i) {
    const float* x = bottom[i]->cpu_data();  // x: (N, C, H, W)
    float* y = top[i]->mutable_cpu_data();   // y: (N, Co, out_h, out_w)
    for (int n = 0; n < num_; ++n) {
      const float* x_n = x + static_cast<long>(n) * bottom_dim_;  // (C, H, W)
      float* y_n = y + static_cast<long>(n) * top_dim_;          // (Co, out_h, out_w)
      // Deconvolution is the convolution's data gradient: its bottom plays the conv output.
      if (reverse_dimensions())
        backward_gemm(x_n, weight, y_n);
      else
        forward_gemm(x_n, weight, y_n);
      if (bias) forward_bias(y_n, bias);
    }
  }
}

void BaseConvolutionLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  if (use_onednn_) return backward_onednn(top, propagate_down, bottom);
  const float* weight = blobs_[0]->cpu_data();  // as in forward_cpu
  const bool weight_wanted = param_propagate_down(0);
  const bool bias_wanted = params_.bias_term && param_propagate_down(1);
  float* weight_diff = weight_wanted ? blobs_[0]->mutable_cpu_diff() : nullptr;  // the weight's shape
  float* bias_diff = bias_wanted ? blobs_[1]->mutable_cpu_diff() : nullptr;      // (Co)
  const bool reversed = reverse_dimensions();
  for (size_t i = 0; i < top.size(); ++i) {
    const float* dy = top[i]->cpu_diff();    // dy: (N, Co, out_h, out_w)
    const float* x = bottom[i]->cpu_data();  // x: (N, C, H, W)
    const bool bottom_wanted = i < propagate_down.size() && propagate_down[i];
    float* dx = bottom_wanted ? bottom[i]->mutable_cpu_diff() : nullptr;  // dx: (N, C, H, W)
    for (int n = 0; n < num_; ++n) {
      const float* dy_n = dy + static_cast<long>(n) * top_dim_;  // (Co, out_h, out_w)
      const float* x_n = x + static_cast<long>(n) * bottom_dim_;  // (C, H, W)
      if (bias_diff) backward_bias(bias_diff, dy_n);
      // The image im2col reads: the bottom for Convolution, the top (here its
      // gradient) for Deconvolution.
      if (weight_diff) {
        if (reversed)
          weight_gemm(dy_n, x_n, weight_diff);
        else
          weight_gemm(x_n, dy_n, weight_diff);
      }
      if (dx) {
        float* dx_n = dx + static_cast<long>(n) * bottom_dim_;  // (C, H, W)
        if (reversed)
          forward_gemm(dy_n, weight, dx_n);
        else
          backward_gemm(dy_n, weight, dx_n);
      }
    }
  }
}

void BaseConvolutionLayer::forward_onednn(const BlobVec& bottom, const BlobVec& top) {
  const bool reversed = reverse_dimensions();
  const float* weight = blobs_[0]->cpu_data();                              // as in forward_cpu
  const float* bias = params_.bias_term ? blobs_[1]->cpu_data() : nullptr;  // (Co)
  for (size_t i = 0; i < bottom.size(); ++i) {
    SyncedMemory& x = *bottom[i]->data_memory();  // x: (N, C, H, W)
    SyncedMemory& y = *top[i]->data_memory();     // y: (N, Co, out_h, out_w)
    if (!reversed) {
      onednn_->forward(x, weight, bias, y);
      continue;
    }
    // Deconvolution is the convolution's data gradient, its bias on the conv input.
    onednn_->backward_data(x, weight, y);
    if (!bias) continue;
    float* y_plain = top[i]->mutable_cpu_data();
    for (int n = 0; n < num_; ++n) forward_bias(y_plain + static_cast<long>(n) * top_dim_, bias);
  }
}

void BaseConvolutionLayer::backward_onednn(const BlobVec& top, const std::vector<bool>& propagate_down,
                                           const BlobVec& bottom) {
  const bool reversed = reverse_dimensions();
  const float* weight = blobs_[0]->cpu_data();  // as in forward_cpu
  float* weight_diff = param_propagate_down(0) ? blobs_[0]->mutable_cpu_diff() : nullptr;
  float* bias_diff = params_.bias_term && param_propagate_down(1) ? blobs_[1]->mutable_cpu_diff() : nullptr;  // (Co)
  for (size_t i = 0; i < top.size(); ++i) {
    SyncedMemory& dy = *top[i]->diff_memory();    // dy: (N, Co, out_h, out_w)
    SyncedMemory& x = *bottom[i]->data_memory();  // x: (N, C, H, W)
    const bool down = i < propagate_down.size() && propagate_down[i];
    SyncedMemory* dx = down ? bottom[i]->diff_memory().get() : nullptr;  // dx: (N, C, H, W)
    if (!reversed) {
      onednn_->backward(x, dy, weight, weight_diff, bias_diff, dx);
      continue;
    }
    if (bias_diff) {
      const float* dy_plain = top[i]->cpu_diff();
      for (int n = 0; n < num_; ++n) backward_bias(bias_diff, dy_plain + static_cast<long>(n) * top_dim_);
    }
    // The conv input is the top (here its gradient), the conv output the bottom.
    if (weight_diff) onednn_->backward_weights(dy, x, weight_diff, nullptr);
    if (dx) onednn_->forward(dy, weight, nullptr, *dx);
  }
}

#ifdef CREMA_WITH_CUDA
cuda::CudnnConvolution& BaseConvolutionLayer::cudnn(Context& ctx) {
  if (!cudnn_) cudnn_ = std::make_unique<cuda::CudnnConvolution>();
  cudnn_->prepare(*ctx.cuda(), conv_shape(), static_cast<size_t>(params_.cudnn_workspace_limit_mb) << 20,
                  ctx.precision() == Precision::tf32);
  return *cudnn_;
}

void BaseConvolutionLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  if (num_ == 0) return;  // cuDNN refuses empty tensors
  const cuda::CudaContext& cc = *ctx.cuda();
  cuda::CudnnConvolution& conv = cudnn(ctx);
  const bool reversed = reverse_dimensions();
  const float* weight = blobs_[0]->gpu_data();                              // as in forward_cpu
  const float* bias = params_.bias_term ? blobs_[1]->gpu_data() : nullptr;  // (Co)
  for (size_t i = 0; i < bottom.size(); ++i) {
    const float* x = bottom[i]->gpu_data();  // x: (N, C, H, W)
    float* y = top[i]->mutable_gpu_data();   // y: (N, Co, out_h, out_w)
    // Deconvolution is the convolution's data gradient: its bottom plays the conv output.
    if (reversed)
      conv.backward_data(cc, x, weight, y);
    else
      conv.forward(cc, x, weight, y);
    if (bias) conv.add_bias(cc, reversed, bias, y);
  }
}

void BaseConvolutionLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  if (num_ == 0) return;
  const cuda::CudaContext& cc = *ctx.cuda();
  cuda::CudnnConvolution& conv = cudnn(ctx);
  const bool reversed = reverse_dimensions();
  const float* weight = blobs_[0]->gpu_data();  // as in forward_cpu
  float* weight_diff = param_propagate_down(0) ? blobs_[0]->mutable_gpu_diff() : nullptr;
  float* bias_diff = params_.bias_term && param_propagate_down(1) ? blobs_[1]->mutable_gpu_diff() : nullptr;
  for (size_t i = 0; i < top.size(); ++i) {
    const float* dy = top[i]->gpu_diff();  // dy: (N, Co, out_h, out_w)
    if (bias_diff) conv.backward_bias(cc, reversed, dy, bias_diff);
    if (weight_diff) {
      const float* x = bottom[i]->gpu_data();  // x: (N, C, H, W)
      // The conv input is the bottom for Convolution, the top (here its gradient) for Deconvolution.
      if (reversed)
        conv.backward_filter(cc, dy, x, weight_diff);
      else
        conv.backward_filter(cc, x, dy, weight_diff);
    }
    if (i < propagate_down.size() && propagate_down[i]) {
      float* dx = bottom[i]->mutable_gpu_diff();  // dx: (N, C, H, W)
      if (reversed)
        conv.forward(cc, dy, weight, dx);
      else
        conv.backward_data(cc, dy, weight, dx);
    }
  }
}
#endif

const float* BaseConvolutionLayer::columns(const float* input) {
  // input: (Ci, H, W) → (G, kernel_dim, S_out); a 1x1 kernel's input already is that matrix.
  if (is_1x1_) return input;
  im2col(input, geometry_, col_buffer_.mutable_cpu_data());
  return col_buffer_.cpu_data();
}

void BaseConvolutionLayer::forward_gemm(const float* input, const float* weights, float* output) {
  // input: (Ci, H, W); weights: (G, Co/G, kernel_dim); output: (G, Co/G, S_out)
  const float* col = columns(input);  // (G, kernel_dim, S_out)
  const int group_out = conv_out_channels_ / params_.group;
  for (int g = 0; g < params_.group; ++g)
    cpu_gemm(false, false, group_out, conv_out_spatial_dim_, kernel_dim_, 1.f, weights + weight_offset_ * g,
             col + col_offset_ * g, 0.f, output + output_offset_ * g);
}

void BaseConvolutionLayer::forward_bias(float* output, const float* bias) const {
  // output: (num_output, out_spatial); bias: (num_output)
  for (int o = 0; o < params_.num_output; ++o) {
    float* row = output + static_cast<long>(o) * out_spatial_dim_;  // (out_spatial)
    for (int s = 0; s < out_spatial_dim_; ++s) row[s] += bias[o];
  }
}

void BaseConvolutionLayer::backward_gemm(const float* output_diff, const float* weights, float* input_diff) {
  // output_diff: (G, Co/G, S_out); weights: (G, Co/G, kernel_dim); input_diff: (Ci, H, W)
  float* col = is_1x1_ ? input_diff : col_buffer_.mutable_cpu_data();  // (G, kernel_dim, S_out)
  const int group_out = conv_out_channels_ / params_.group;
  for (int g = 0; g < params_.group; ++g)
    cpu_gemm(true, false, kernel_dim_, conv_out_spatial_dim_, group_out, 1.f, weights + weight_offset_ * g,
             output_diff + output_offset_ * g, 0.f, col + col_offset_ * g);
  if (!is_1x1_) col2im(col, geometry_, input_diff);
}

void BaseConvolutionLayer::weight_gemm(const float* input, const float* output_diff, float* weight_diff) {
  // input: (Ci, H, W); output_diff: (G, Co/G, S_out); weight_diff: (G, Co/G, kernel_dim)
  const float* col = columns(input);  // (G, kernel_dim, S_out)
  const int group_out = conv_out_channels_ / params_.group;
  for (int g = 0; g < params_.group; ++g)
    cpu_gemm(false, true, group_out, kernel_dim_, conv_out_spatial_dim_, 1.f, output_diff + output_offset_ * g,
             col + col_offset_ * g, 1.f, weight_diff + weight_offset_ * g);
}

void BaseConvolutionLayer::backward_bias(float* bias_diff, const float* output_diff) const {
  // output_diff: (num_output, out_spatial); bias_diff: (num_output)
  for (int o = 0; o < params_.num_output; ++o) {
    const float* row = output_diff + static_cast<long>(o) * out_spatial_dim_;  // (out_spatial)
    double sum = 0;
    for (int s = 0; s < out_spatial_dim_; ++s) sum += row[s];
    bias_diff[o] += static_cast<float>(sum);
  }
}

}  // namespace crema
