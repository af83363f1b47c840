#include "layers/onednn/onednn_pooling.hpp"

#include <optional>
#include <unordered_map>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;
using Role = Staged::Role;

struct Pooling::Impl {
  std::optional<PoolShape> shape;
  memory::desc built_for;  // the input layout the primitives take
  memory::desc refused;    // a layout oneDNN would not build for: read plain instead
  dnnl::pooling_forward forward;
  dnnl::pooling_backward backward;
  Staged f_src, f_dst, b_diff_dst, b_diff_src;
  memory workspace;  // MAX: which input each output came from, oneDNN's format
  std::pair<std::string, std::string> implementations;

  void build(const PoolShape& s, const memory::desc& src_layout);
};

Pooling::Pooling() : impl_(std::make_unique<Impl>()) {}
Pooling::~Pooling() = default;

namespace {
memory::dims input_dims(const PoolShape& s) { return {s.num, s.channels, s.height, s.width}; }
memory::dims output_dims(const PoolShape& s) { return {s.num, s.channels, s.pooled_height, s.pooled_width}; }
}  // namespace

std::string Pooling::prepare(const PoolShape& s) {
  Impl& m = *impl_;
  if (m.shape && *m.shape == s) return "";
  m.shape.reset();
  try {
    // For the plain layout; forward() rebuilds for the layout its input comes in.
    m.build(s, plain_desc(input_dims(s)));
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  m.shape = s;
  return "";
}

void Pooling::Impl::build(const PoolShape& s, const memory::desc& src_layout) {
  const memory::dims src = input_dims(s), dst = output_dims(s);
  const memory::dims strides = {s.stride_h, s.stride_w}, kernel = {s.kernel_h, s.kernel_w};
  const memory::dims pad_l = {s.pad_h, s.pad_w};
  // Caffe's ceil rounding: the right padding that makes oneDNN's size Caffe's.
  const memory::dims pad_r = {(s.pooled_height - 1) * s.stride_h + s.kernel_h - s.height - s.pad_h,
                              (s.pooled_width - 1) * s.stride_w + s.kernel_w - s.width - s.pad_w};
  const dnnl::algorithm alg = s.method == PoolShape::Method::max ? dnnl::algorithm::pooling_max
                              : s.method == PoolShape::Method::average_with_padding
                                  ? dnnl::algorithm::pooling_avg_include_padding
                                  : dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::engine& eng = cpu_engine();
  using fwd = dnnl::pooling_forward;
  // Pooling is memory-bound: a reorder would cost as much as the pooling, so it takes
  // its input in whatever layout that comes in, and its output follows.
  const fwd::primitive_desc fpd(
      fwd::desc(dnnl::prop_kind::forward_training, alg, src_layout, any_desc(dst), strides, kernel, pad_l, pad_r), eng);
  forward = fwd(fpd);
  f_src.prepare(plain_desc(src), fpd.src_desc(), Staged::Role::input);
  f_dst.prepare(plain_desc(dst), fpd.dst_desc(), Staged::Role::output);
  workspace = fpd.workspace_desc().get_size() ? memory(fpd.workspace_desc(), eng) : memory();
  using bwd = dnnl::pooling_backward;
  // The gradients in the forward's layouts: left to oneDNN ("any"), a global pool's 1×1 output
  // made it pick a layout (acdB16b) that only its reference code takes, 100× slower.
  const bwd::primitive_desc bpd(bwd::desc(alg, fpd.src_desc(), fpd.dst_desc(), strides, kernel, pad_l, pad_r), eng,
                                fpd);
  backward = bwd(bpd);
  b_diff_dst.prepare(plain_desc(dst), bpd.diff_dst_desc(), Staged::Role::input);
  b_diff_src.prepare(plain_desc(src), bpd.diff_src_desc(), Staged::Role::output);
  built_for = src_layout;
  implementations = {fpd.impl_info_str(), bpd.impl_info_str()};
}

std::pair<std::string, std::string> Pooling::implementations() const { return impl_->implementations; }

void Pooling::forward(SyncedMemory& x, SyncedMemory& y) {
  Impl& m = *impl_;
  const memory::desc layout = current_desc(x, input_dims(*m.shape));
  if (layout != m.built_for && layout != m.refused) {
    try {
      m.build(*m.shape, layout);
    } catch (const dnnl::error&) {  // not for this layout: the plain one, which prepare() built
      m.refused = layout;
      m.build(*m.shape, plain_desc(input_dims(*m.shape)));
    }
  }
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, m.f_src.input(x)}, {DNNL_ARG_DST, m.f_dst.output(y)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.forward.execute(cpu_stream(), args);
  m.f_dst.finish_output(y);
}

void Pooling::backward(SyncedMemory& dy, SyncedMemory& dx) {
  Impl& m = *impl_;
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, m.b_diff_dst.input(dy)},
                                          {DNNL_ARG_DIFF_SRC, m.b_diff_src.output(dx)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.backward.execute(cpu_stream(), args);
  m.b_diff_src.finish_output(dx);
}

}  // namespace crema::onednn
