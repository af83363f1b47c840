#include "layers/onednn/onednn_common.hpp"

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

std::string describe(const dnnl::error& e) {
  return std::string(e.what()) + " (oneDNN status " + std::to_string(static_cast<int>(e.status)) + ")";
}

void Staged::prepare(const memory::desc& plain, const memory::desc& inner, Role role) {
  role_ = role;
  same_ = plain == inner;
  dnnl::engine& eng = cpu_engine();
  user_ = memory(plain, eng, DNNL_MEMORY_NONE);
  own_ = memory();
  reorder_ = dnnl::reorder();
  staged_ = nullptr;
  if (same_ && role != Role::accumulate) return;  // the primitive works on the caller's buffer
  own_ = memory(inner, eng);
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

memory& Staged::input(const float* p) {
  // oneDNN takes a non-const handle, but an input is only read.
  user_.set_data_handle(const_cast<float*>(p));
  staged_ = p;
  if (!own_) return user_;
  reorder_.execute(cpu_stream(), user_, own_);
  return own_;
}

memory* Staged::staged(const float* p) {
  if (!p || p != staged_) return nullptr;
  return own_ ? &own_ : &user_;
}

memory& Staged::output(float* p) {
  user_.set_data_handle(p);
  return own_ ? own_ : user_;
}

void Staged::finish_output() {
  if (own_) reorder_.execute(cpu_stream(), own_, user_);
}

}  // namespace crema::onednn
