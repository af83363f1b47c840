#include "layers/onednn/onednn_common.hpp"

#include <algorithm>
#include <cstring>

#include "layers/onednn/onednn_support.hpp"

namespace crema::onednn {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

memory::desc plain_desc(const memory::dims& dims) {
  static const memory::format_tag tags[] = {memory::format_tag::a, memory::format_tag::ab, memory::format_tag::abc,
                                            memory::format_tag::abcd, memory::format_tag::abcde};
  return memory::desc(dims, memory::data_type::f32, tags[dims.size() - 1]);
}

memory::desc any_desc(const memory::dims& dims, memory::data_type type) {
  return memory::desc(dims, type, memory::format_tag::any);
}

std::string bf16_unsupported() {
  // oneDNN's view of the CPU (DNNL_MAX_CPU_ISA can lower it): bf16 products need
  // AVX512-BF16 (Cooper Lake and later) or AMX (Sapphire Rapids and later).
  using dnnl::cpu_isa;
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  auto has = [isa](cpu_isa i) { return (isa & static_cast<unsigned>(i)) == static_cast<unsigned>(i); };
  if (has(cpu_isa::avx512_core_bf16)) return "";
  const char* best = has(cpu_isa::avx512_core_vnni) ? "AVX-512 with VNNI"
                     : has(cpu_isa::avx512_core)    ? "AVX-512"
                     : has(cpu_isa::avx2)           ? "AVX2"
                                                    : "below AVX2";
  return std::string("this CPU has neither AVX512-BF16 nor AMX (oneDNN sees ") + best + ")";
}

bool is_reference(const std::string& implementation) {
  return implementation.rfind("ref", 0) == 0 || implementation.find("_ref") != std::string::npos;
}

std::string describe(const dnnl::error& e) {
  return std::string(e.what()) + " (oneDNN status " + std::to_string(static_cast<int>(e.status)) + ")";
}

BlockedCopy::BlockedCopy(const memory::desc& desc) : desc_(desc), memory_(desc, cpu_engine()) {
  const memory::dims dims = desc.dims();
  if (dims.size() == 4 && desc.data_type() == memory::data_type::f32) {
    if (desc == memory::desc(dims, memory::data_type::f32, memory::format_tag::nChw16c)) channel_block_ = 16;
    if (desc == memory::desc(dims, memory::data_type::f32, memory::format_tag::nChw8c)) channel_block_ = 8;
  }
}

bool BlockedCopy::made_for(const std::vector<int>& shape) const {
  const memory::dims dims = desc_.dims();
  return std::equal(dims.begin(), dims.end(), shape.begin(), shape.end());
}

std::shared_ptr<LayoutCopy> BlockedCopy::make_like() const {
  auto copy = std::make_shared<BlockedCopy>(desc_);
  std::memset(copy->floats(), 0, desc_.get_size());  // the padding a layer's own loop never writes
  return copy;
}

void BlockedCopy::to_plain(void* plain) {
  if (!to_plain_) {
    plain_ = dnnl::memory(plain_desc(desc_.dims()), cpu_engine(), DNNL_MEMORY_NONE);
    to_plain_ = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), desc_, cpu_engine(), plain_.get_desc()));
  }
  plain_.set_data_handle(plain);
  to_plain_.execute(cpu_stream(), memory_, plain_);
}

bool BlockedCopy::same_layout(const LayoutCopy& other) const {
  const auto* o = dynamic_cast<const BlockedCopy*>(&other);
  return o && o->desc_ == desc_;
}

memory::desc current_desc(SyncedMemory& m, const memory::dims& dims) {
  const auto* copy = dynamic_cast<const BlockedCopy*>(m.layout());
  return copy && copy->desc().dims() == dims ? copy->desc() : plain_desc(dims);
}

void Staged::prepare(const memory::desc& plain, const memory::desc& inner, Role role) {
  role_ = role;
  same_ = plain == inner;
  inner_ = inner;
  dnnl::engine& eng = cpu_engine();
  user_ = memory(plain, eng, DNNL_MEMORY_NONE);
  own_ = memory();
  out_.reset();
  reorder_ = dnnl::reorder();
  relayout_ = dnnl::reorder();
  relayout_from_ = memory::desc();
  staged_ = nullptr;
  if (same_ && role != Role::accumulate) return;  // the primitive works on the caller's buffer
  if (role == Role::output) {
    out_ = std::make_shared<BlockedCopy>(inner);
    own_ = out_->memory();
  } else {
    own_ = memory(inner, eng);
  }
  if (role == Role::input) {
    reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, plain, eng, inner));
  } else {
    dnnl::primitive_attr attr;
    if (role == Role::accumulate) {
      dnnl::post_ops sum;  // dst = src + dst
      sum.append_sum(1.f);
      attr.set_post_ops(sum);
    }
    reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, inner, eng, plain, attr));
  }
}

memory& Staged::input_of_type(const void* p) {
  // oneDNN takes a non-const handle, but an input is only read.
  user_.set_data_handle(const_cast<void*>(p));
  staged_ = p;
  if (!own_) return user_;
  reorder_.execute(cpu_stream(), user_, own_);
  return own_;
}

memory& Staged::input(SyncedMemory& m) {
  auto* copy = dynamic_cast<BlockedCopy*>(m.layout());
  if (copy && copy->desc() == inner_) {
    staged_ = nullptr;  // nothing copied: taking it again is free
    return copy->memory();
  }
  if (copy && own_ && copy->desc().dims() == inner_.dims()) {
    // Another blocked layout: one reorder straight into ours, not two through plain.
    if (!relayout_ || relayout_from_ != copy->desc()) {
      relayout_from_ = copy->desc();
      relayout_ = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), relayout_from_, cpu_engine(), inner_));
    }
    relayout_.execute(cpu_stream(), copy->memory(), own_);
    staged_ = &m;
    staged_writes_ = m.writes();
    return own_;
  }
  memory& staged = input(static_cast<const float*>(m.cpu_data()));
  staged_ = own_ ? static_cast<const void*>(&m) : nullptr;
  staged_writes_ = m.writes();
  return staged;
}

memory* Staged::staged(const SyncedMemory& m) {
  // Written since (through a view of another shape, or by a later in-place layer): the
  // copy is stale, and backward must stage the current values again.
  return staged_ == &m && m.writes() == staged_writes_ ? &own_ : nullptr;
}

memory& Staged::output(float* p) {
  user_.set_data_handle(p);
  return own_ ? own_ : user_;
}

void Staged::finish_output() {
  if (own_) reorder_.execute(cpu_stream(), own_, user_);
}

memory& Staged::output(SyncedMemory& m) {
  if (!out_) return output(static_cast<float*>(m.mutable_cpu_data()));
  // The buffer may still hold another blob's contents (this Staged's output went
  // there before); that blob keeps it, and this output takes a fresh one.
  if (out_.use_count() > 1 && m.layout() != out_.get()) {
    out_ = std::make_shared<BlockedCopy>(inner_);
    own_ = out_->memory();
  }
  return own_;
}

void Staged::finish_output(SyncedMemory& m) {
  if (out_) m.set_layout(out_);
}

}  // namespace crema::onednn
