#include "layers/onednn/onednn_lrn.hpp"

#include <optional>
#include <unordered_map>

#include "layers/onednn/onednn_common.hpp"
#include "layers/onednn/onednn_support.hpp"

namespace crema::onednn {

using dnnl::memory;
using Role = Staged::Role;

struct LRN::Impl {
  std::optional<LrnShape> shape;
  dnnl::lrn_forward forward;
  dnnl::lrn_backward backward;
  Staged f_src, f_dst, b_src, b_diff_dst, b_diff_src;
  memory workspace;
  bool b_src_as_forward = false;  // backward takes x in forward's layout: reuse forward's copy
  bool reference = false;         // oneDNN's reference implementation, not a fast one
  std::pair<std::string, std::string> implementations;
};

LRN::LRN() : impl_(std::make_unique<Impl>()) {}
LRN::~LRN() = default;

std::string LRN::prepare(const LrnShape& s, bool reference_ok) {
  Impl& m = *impl_;
  const auto why = [&] {
    return m.reference && !reference_ok
               ? "oneDNN has only its reference code for " + std::to_string(s.channels) + " channels"
               : std::string();
  };
  if (m.shape && *m.shape == s) return why();
  m.shape.reset();
  const memory::dims dims = {s.num, s.channels, s.height, s.width};
  const memory::desc plain = plain_desc(dims);
  // oneDNN's fast LRN kernels work on channel blocks of 16; the plain layout would
  // take its reference code.
  const memory::desc blocked(dims, memory::data_type::f32, memory::format_tag::nChw16c);
  const auto alg = s.across_channels ? dnnl::algorithm::lrn_across_channels : dnnl::algorithm::lrn_within_channel;
  dnnl::engine& eng = cpu_engine();
  try {
    using fwd = dnnl::lrn_forward;
    const fwd::primitive_desc fpd(
        fwd::desc(dnnl::prop_kind::forward_training, alg, blocked, s.local_size, s.alpha, s.beta, s.k), eng);
    m.forward = fwd(fpd);
    m.f_src.prepare(plain, fpd.src_desc(), Role::input);
    m.f_dst.prepare(plain, fpd.dst_desc(), Role::output);
    m.workspace = fpd.workspace_desc().get_size() ? memory(fpd.workspace_desc(), eng) : memory();
    using bwd = dnnl::lrn_backward;
    const bwd::primitive_desc bpd(bwd::desc(alg, blocked, blocked, s.local_size, s.alpha, s.beta, s.k), eng, fpd);
    m.backward = bwd(bpd);
    m.b_src.prepare(plain, bpd.src_desc(), Role::input);
    m.b_src_as_forward = bpd.src_desc() == fpd.src_desc();
    m.b_diff_dst.prepare(plain, bpd.diff_dst_desc(), Role::input);
    m.b_diff_src.prepare(plain, bpd.diff_src_desc(), Role::output);
    m.implementations = {fpd.impl_info_str(), bpd.impl_info_str()};
    m.reference = is_reference(m.implementations.first) || is_reference(m.implementations.second);
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  m.shape = s;
  return why();
}

std::pair<std::string, std::string> LRN::implementations() const { return impl_->implementations; }

void LRN::forward(SyncedMemory& x, SyncedMemory& y) {
  Impl& m = *impl_;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, m.f_src.input(x)}, {DNNL_ARG_DST, m.f_dst.output(y)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.forward.execute(cpu_stream(), args);
  m.f_dst.finish_output(y);
}

void LRN::backward(SyncedMemory& x, SyncedMemory& dy, SyncedMemory& dx) {
  Impl& m = *impl_;
  // x as at forward (Caffe's backward assumes it), so forward's copy serves when it was of x.
  memory* src = m.b_src_as_forward ? m.f_src.staged(x) : nullptr;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src ? *src : m.b_src.input(x)},
                                          {DNNL_ARG_DIFF_DST, m.b_diff_dst.input(dy)},
                                          {DNNL_ARG_DIFF_SRC, m.b_diff_src.output(dx)}};
  if (m.workspace) args[DNNL_ARG_WORKSPACE] = m.workspace;
  m.backward.execute(cpu_stream(), args);
  m.b_diff_src.finish_output(dx);
}

}  // namespace crema::onednn
