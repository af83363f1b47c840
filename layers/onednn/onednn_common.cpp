#include "layers/onednn/onednn_common.hpp"

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

memory::desc any_desc(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
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
  if (!own_) return user_;
  reorder_.execute(cpu_stream(), user_, own_);
  return own_;
}

memory& Staged::output(float* p) {
  user_.set_data_handle(p);
  return own_ ? own_ : user_;
}

void Staged::finish_output() {
  if (own_) reorder_.execute(cpu_stream(), own_, user_);
}

}  // namespace crema::onednn
