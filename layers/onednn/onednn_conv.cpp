#include "layers/onednn/onednn_conv.hpp"

#include <optional>
#include <unordered_map>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;
using Role = Staged::Role;

struct Convolution::Impl {
  std::optional<ConvShape> shape;
  bool with_bias = false;
  bool bf16 = false;
  int builds = 0;
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
  // forward
  Staged f_src, f_weights, f_bias, f_dst;
  // backward data
  Staged d_diff_dst, d_weights, d_diff_src;
  // backward weights
  Staged w_src, w_diff_dst, w_diff_weights, w_diff_bias;
  // Where the weight gradient takes its src as forward did, or its diff_dst as the
  // data gradient does, backward() reuses their copies: an activation reorder each.
  bool w_src_as_forward = false, w_diff_dst_as_data = false;

  void weights_gradient(memory& src, memory& diff_dst, float* filter_diff, float* bias_diff);
};

Convolution::Convolution() : impl_(std::make_unique<Impl>()) {}
Convolution::~Convolution() = default;

int Convolution::builds() const { return impl_->builds; }

std::string Convolution::prepare(const ConvShape& s, bool with_bias, bool bf16) {
  Impl& m = *impl_;
  if (m.shape && *m.shape == s && m.with_bias == with_bias && m.bf16 == bf16) return "";
  m.shape.reset();
  const memory::dims src = {s.num, s.in_channels, s.in_h, s.in_w};
  const memory::dims dst = {s.num, s.out_channels, s.out_h, s.out_w};
  // Caffe's filter (Co, Ci/G, kh, kw) is oneDNN's goihw (G, Co/G, Ci/G, kh, kw) in the same order.
  const memory::dims weights =
      s.group == 1 ? memory::dims{s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}
                   : memory::dims{s.group, s.out_channels / s.group, s.in_channels / s.group, s.kernel_h, s.kernel_w};
  const memory::dims bias = {s.out_channels};
  const memory::dims strides = {s.stride_h, s.stride_w};
  const memory::dims dilates = {s.dilation_h - 1, s.dilation_w - 1};  // oneDNN counts the gaps
  const memory::dims pad_l = {s.pad_h, s.pad_w};
  // Caffe's output size truncates; the right padding that makes oneDNN's size the same
  // (it may be less than the left padding: those positions are never read).
  const memory::dims pad_r = {(s.out_h - 1) * s.stride_h + s.dilation_h * (s.kernel_h - 1) + 1 - s.in_h - s.pad_h,
                              (s.out_w - 1) * s.stride_w + s.dilation_w * (s.kernel_w - 1) + 1 - s.in_w - s.pad_w};
  const auto alg = dnnl::algorithm::convolution_direct;  // Winograd would change the rounding
  dnnl::engine& eng = cpu_engine();
  // The products' inputs: f32, or bf16 (converted by the staging reorders).
  const memory::data_type in = input_type(bf16);
  try {
    using fwd = dnnl::convolution_forward;
    const fwd::desc fd = with_bias ? fwd::desc(dnnl::prop_kind::forward_training, alg, any_desc(src, in),
                                               any_desc(weights, in), any_desc(bias), any_desc(dst), strides, dilates,
                                               pad_l, pad_r)
                                   : fwd::desc(dnnl::prop_kind::forward_training, alg, any_desc(src, in),
                                               any_desc(weights, in), any_desc(dst), strides, dilates, pad_l, pad_r);
    const fwd::primitive_desc fpd(fd, eng);
    m.forward = fwd(fpd);
    m.f_src.prepare(plain_desc(src), fpd.src_desc(), Role::input);
    m.f_weights.prepare(plain_desc(weights), fpd.weights_desc(), Role::input);
    if (with_bias) m.f_bias.prepare(plain_desc(bias), fpd.bias_desc(), Role::input);
    m.f_dst.prepare(plain_desc(dst), fpd.dst_desc(), Role::output);

    using bwd_data = dnnl::convolution_backward_data;
    const bwd_data::primitive_desc dpd(
        bwd_data::desc(alg, any_desc(src), any_desc(weights, in), any_desc(dst, in), strides, dilates, pad_l, pad_r), eng,
        fpd);
    m.backward_data = bwd_data(dpd);
    m.d_diff_dst.prepare(plain_desc(dst), dpd.diff_dst_desc(), Role::input);
    m.d_weights.prepare(plain_desc(weights), dpd.weights_desc(), Role::input);
    m.d_diff_src.prepare(plain_desc(src), dpd.diff_src_desc(), Role::output);

    using bwd_w = dnnl::convolution_backward_weights;
    const bwd_w::desc wd = with_bias ? bwd_w::desc(alg, any_desc(src, in), any_desc(weights), any_desc(bias),
                                                   any_desc(dst, in), strides, dilates, pad_l, pad_r)
                                     : bwd_w::desc(alg, any_desc(src, in), any_desc(weights), any_desc(dst, in), strides,
                                                   dilates, pad_l, pad_r);
    const bwd_w::primitive_desc wpd(wd, eng, fpd);
    m.backward_weights = bwd_w(wpd);
    m.w_src.prepare(plain_desc(src), wpd.src_desc(), Role::input);
    m.w_diff_dst.prepare(plain_desc(dst), wpd.diff_dst_desc(), Role::input);
    m.w_diff_weights.prepare(plain_desc(weights), wpd.diff_weights_desc(), Role::accumulate);
    if (with_bias) m.w_diff_bias.prepare(plain_desc(bias), wpd.diff_bias_desc(), Role::accumulate);
    m.w_src_as_forward = wpd.src_desc() == fpd.src_desc();
    m.w_diff_dst_as_data = wpd.diff_dst_desc() == dpd.diff_dst_desc();
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  m.shape = s;
  m.with_bias = with_bias;
  m.bf16 = bf16;
  ++m.builds;
  return "";
}

void Convolution::forward(SyncedMemory& input, const float* filter, const float* bias, SyncedMemory& output) {
  Impl& m = *impl_;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, m.f_src.input(input)},
                                          {DNNL_ARG_WEIGHTS, m.f_weights.input(filter)},
                                          {DNNL_ARG_DST, m.f_dst.output(output)}};
  if (m.with_bias) args[DNNL_ARG_BIAS] = m.f_bias.input(bias);
  m.forward.execute(cpu_stream(), args);
  m.f_dst.finish_output(output);
}

void Convolution::backward_data(SyncedMemory& output_diff, const float* filter, SyncedMemory& input_diff) {
  Impl& m = *impl_;
  m.f_src.forget();  // forward's src no longer pairs with the next backward_weights
  m.backward_data.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, m.d_diff_dst.input(output_diff)},
                                         {DNNL_ARG_WEIGHTS, m.d_weights.input(filter)},
                                         {DNNL_ARG_DIFF_SRC, m.d_diff_src.output(input_diff)}});
  m.d_diff_src.finish_output(input_diff);
}

void Convolution::backward_weights(SyncedMemory& input, SyncedMemory& output_diff, float* filter_diff,
                                   float* bias_diff) {
  Impl& m = *impl_;
  m.f_src.forget();
  m.weights_gradient(m.w_src.input(input), m.w_diff_dst.input(output_diff), filter_diff, bias_diff);
}

void Convolution::backward(SyncedMemory& input, SyncedMemory& output_diff, const float* filter, float* filter_diff,
                           float* bias_diff, SyncedMemory* input_diff) {
  Impl& m = *impl_;
  memory* src = m.w_src_as_forward ? m.f_src.staged(input) : nullptr;  // forward's copy, if of this input
  m.f_src.forget();
  memory* diff_dst = nullptr;
  if (input_diff) {
    diff_dst = &m.d_diff_dst.input(output_diff);
    m.backward_data.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, *diff_dst},
                                           {DNNL_ARG_WEIGHTS, m.d_weights.input(filter)},
                                           {DNNL_ARG_DIFF_SRC, m.d_diff_src.output(*input_diff)}});
    m.d_diff_src.finish_output(*input_diff);
    if (!m.w_diff_dst_as_data) diff_dst = nullptr;
  }
  if (!filter_diff && !bias_diff) return;
  m.weights_gradient(src ? *src : m.w_src.input(input), diff_dst ? *diff_dst : m.w_diff_dst.input(output_diff),
                     filter_diff, bias_diff);
}

void Convolution::Impl::weights_gradient(memory& src, memory& diff_dst, float* filter_diff, float* bias_diff) {
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_DIFF_DST, diff_dst},
                                          {DNNL_ARG_DIFF_WEIGHTS, w_diff_weights.output(filter_diff)}};
  // The primitive computes every gradient it was built for; one nobody wants goes
  // to the scratch buffer of its Staged and is dropped.
  if (with_bias) args[DNNL_ARG_DIFF_BIAS] = w_diff_bias.output(bias_diff);
  backward_weights.execute(cpu_stream(), args);
  if (filter_diff) w_diff_weights.finish_output();
  if (bias_diff) w_diff_bias.finish_output();
}

}  // namespace crema::onednn
