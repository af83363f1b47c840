#include "layers/onednn/onednn_pooling.hpp"

#include <optional>
#include <unordered_map>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;
using Role = Staged::Role;

struct Pooling::Impl {
  std::optional<PoolShape> shape;
  dnnl::pooling_forward forward;
  dnnl::pooling_backward backward;
  Staged f_src, f_dst, b_diff_dst, b_diff_src;
  memory workspace;  // MAX: which input each output came from, oneDNN's format
};

Pooling::Pooling() : impl_(std::make_unique<Impl>()) {}
Pooling::~Pooling() = default;

std::string Pooling::prepare(const PoolShape& s) {
  Impl& m = *impl_;
  if (m.shape && *m.shape == s) return "";
  m.shape.reset();
  const memory::dims src = {s.num, s.channels, s.height, s.width};
  const memory::dims dst = {s.num, s.channels, s.pooled_height, s.pooled_width};
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
  try {
    using fwd = dnnl::pooling_forward;
    // Blocked layouts would need a reorder on each side; pooling is memory-bound, so
    // it works on the caller's plain layout.
    const fwd::primitive_desc fpd(fwd::desc(dnnl::prop_kind::forward_training, alg, plain_desc(src),
                                            plain_desc(dst), strides, kernel, pad_l, pad_r),
                                  eng);
    m.forward = fwd(fpd);
    m.f_src.prepare(plain_desc(src), fpd.src_desc(), Role::input);
    m.f_dst.prepare(plain_desc(dst), fpd.dst_desc(), Role::output);
    m.workspace = fpd.workspace_desc().get_size() ? memory(fpd.workspace_desc(), eng) : memory();
    using bwd = dnnl::pooling_backward;
    const bwd::primitive_desc bpd(bwd::desc(alg, plain_desc(src), plain_desc(dst), strides, kernel, pad_l, pad_r),
                                  eng, fpd);
    m.backward = bwd(bpd);
    m.b_diff_dst.prepare(plain_desc(dst), bpd.diff_dst_desc(), Role::input);
    m.b_diff_src.prepare(plain_desc(src), bpd.diff_src_desc(), Role::output);
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  m.shape = s;
  return "";
}

void Pooling::forward(const float* x, float* y) {
  Impl& m = *impl_;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, m.f_src.input(x)}, {DNNL_ARG_DST, m.f_dst.output(y)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.forward.execute(cpu_stream(), args);
  m.f_dst.finish_output();
}

void Pooling::backward(const float* dy, float* dx) {
  Impl& m = *impl_;
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, m.b_diff_dst.input(dy)},
                                          {DNNL_ARG_DIFF_SRC, m.b_diff_src.output(dx)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.backward.execute(cpu_stream(), args);
  m.b_diff_src.finish_output();
}

}  // namespace crema::onednn
