#include "layers/onednn/onednn_eltwise.hpp"

#include <optional>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;
using Role = Staged::Role;

struct Eltwise::Impl {
  std::optional<EltwiseOp> op;
  memory::desc built_for;  // the layout the primitives take
  memory::desc refused;    // a layout oneDNN would not build for: read plain instead
  dnnl::eltwise_forward forward;
  dnnl::eltwise_backward backward;
  Staged f_src, f_dst, b_dst, b_diff_dst, b_diff_src;

  void build(const memory::desc& layout);
  // The layout of `m`'s current values: its blocked copy's, or plain (count).
  memory::desc layout_of(SyncedMemory& m) const;
};

Eltwise::Eltwise() : impl_(std::make_unique<Impl>()) {}
Eltwise::~Eltwise() = default;

std::string Eltwise::prepare(const EltwiseOp& op) {
  Impl& m = *impl_;
  if (m.op && *m.op == op) return "";
  m.op.reset();
  if (op.kind == EltwiseOp::Kind::relu && op.alpha < 0.f)
    return "a negative negative_slope: the gradient from the output would take the wrong branch";
  m.op = op;
  try {
    m.build(plain_desc({op.count}));  // forward() rebuilds for the layout its input comes in
  } catch (const dnnl::error& e) {
    m.op.reset();
    return describe(e);
  }
  return "";
}

memory::desc Eltwise::Impl::layout_of(SyncedMemory& m) const {
  const auto* copy = dynamic_cast<const BlockedCopy*>(m.layout());
  if (copy) {
    long values = 1;
    for (memory::dim d : copy->desc().dims()) values *= d;
    if (values == op->count) return copy->desc();
  }
  return plain_desc({op->count});
}

void Eltwise::Impl::build(const memory::desc& layout) {
  const dnnl::algorithm alg = op->kind == EltwiseOp::Kind::relu       ? dnnl::algorithm::eltwise_relu_use_dst_for_bwd
                              : op->kind == EltwiseOp::Kind::logistic ? dnnl::algorithm::eltwise_logistic_use_dst_for_bwd
                                                                       : dnnl::algorithm::eltwise_tanh_use_dst_for_bwd;
  dnnl::engine& eng = cpu_engine();
  const memory::desc plain = plain_desc(layout.dims());
  using fwd = dnnl::eltwise_forward;
  const fwd::primitive_desc fpd(fwd::desc(dnnl::prop_kind::forward_training, alg, layout, op->alpha), eng);
  forward = fwd(fpd);
  f_src.prepare(plain, fpd.src_desc(), Role::input);
  f_dst.prepare(plain, fpd.dst_desc(), Role::output);
  using bwd = dnnl::eltwise_backward;
  const bwd::primitive_desc bpd(bwd::desc(alg, layout, layout, op->alpha), eng, fpd);
  backward = bwd(bpd);
  b_dst.prepare(plain, bpd.dst_desc(), Role::input);
  b_diff_dst.prepare(plain, bpd.diff_dst_desc(), Role::input);
  b_diff_src.prepare(plain, bpd.diff_src_desc(), Role::output);
  built_for = layout;
}

namespace {
// `m`'s blocked copy when the primitive takes that layout (`built_for`), so that a
// layer in place runs in place on it: no second buffer, no copy. Else null.
BlockedCopy* in_place_copy(SyncedMemory& m, const memory::desc& built_for) {
  auto* copy = dynamic_cast<BlockedCopy*>(m.layout());
  return copy && copy->desc() == built_for ? copy : nullptr;
}
}  // namespace

void Eltwise::forward(SyncedMemory& x, SyncedMemory& y) {
  Impl& m = *impl_;
  const memory::desc layout = m.layout_of(x);
  if (layout != m.built_for && layout != m.refused) {
    try {
      m.build(layout);
    } catch (const dnnl::error&) {  // not for this layout: the plain one, which prepare() built
      m.refused = layout;
      m.build(plain_desc({m.op->count}));
    }
  }
  if (BlockedCopy* copy = &x == &y ? in_place_copy(x, m.built_for) : nullptr) {
    m.forward.execute(cpu_stream(), {{DNNL_ARG_SRC, copy->memory()}, {DNNL_ARG_DST, copy->memory()}});
    y.mutable_layout();
    return;
  }
  memory& src = m.f_src.input(x);
  m.forward.execute(cpu_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, m.f_dst.output(y)}});
  m.f_dst.finish_output(y);
}

void Eltwise::backward(SyncedMemory& y, SyncedMemory& dy, SyncedMemory& dx) {
  Impl& m = *impl_;
  memory& dst = m.b_dst.input(y);
  if (BlockedCopy* copy = &dy == &dx ? in_place_copy(dy, m.built_for) : nullptr) {
    m.backward.execute(cpu_stream(),
                       {{DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_DST, copy->memory()}, {DNNL_ARG_DIFF_SRC, copy->memory()}});
    dx.mutable_layout();
    return;
  }
  memory& diff_dst = m.b_diff_dst.input(dy);
  m.backward.execute(cpu_stream(),
                     {{DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, m.b_diff_src.output(dx)}});
  m.b_diff_src.finish_output(dx);
}

}  // namespace crema::onednn
