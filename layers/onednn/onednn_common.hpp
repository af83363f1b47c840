// What crema's oneDNN engines share: the process's CPU engine, this thread's stream,
// and Staged, which carries data between a layer's plain row-major buffer (NCHW,
// OIHW, what every blob holds) and the layout a primitive prefers. Only the oneDNN
// sources include this header; the layers see plain interfaces.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>

namespace crema::onednn {

// One CPU engine for the process (oneDNN caches its kernels per engine).
dnnl::engine& cpu_engine();
// A stream per thread: a stream is not safe to share between threads.
dnnl::stream& cpu_stream();

// f32 in plain row-major layout (dims.size() = 1..5: x, nc, nchw, oihw, goihw).
dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims);
// The layout left to the primitive; f32 unless told.
dnnl::memory::desc any_desc(const dnnl::memory::dims& dims, dnnl::memory::data_type type = dnnl::memory::data_type::f32);
// The data type of a product's inputs for `bf16` (the layer's precision).
inline dnnl::memory::data_type input_type(bool bf16) {
  return bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// "what: oneDNN's message" for primitives oneDNN refuses to build.
std::string describe(const dnnl::error& e);

// One argument of a primitive: the caller's plain buffer on one side, the
// primitive's layout on the other, a copy between them only where they differ.
class Staged {
 public:
  enum class Role { input, output, accumulate };
  // `plain`: the caller's layout; `inner`: what the primitive was built with.
  void prepare(const dnnl::memory::desc& plain, const dnnl::memory::desc& inner, Role role);

  // An input: memory in the primitive's layout holding what `p` holds (`p` itself
  // when the layouts agree, else a copy made now).
  dnnl::memory& input(const float* p);
  // The memory the last input() staged, when it staged `p` and was not forgotten
  // since; else null. Lets two primitives that take the same buffer in the same
  // layout (a convolution's forward and weight gradient) share one copy.
  dnnl::memory* staged(const float* p);
  void forget() { staged_ = nullptr; }
  // An output the primitive fills; finish_output then moves it to `p` (output) or
  // adds it to `p` (accumulate: Caffe accumulates parameter gradients, and
  // oneDNN's primitives overwrite theirs).
  dnnl::memory& output(float* p);
  void finish_output();

 private:
  Role role_ = Role::input;
  bool same_ = true;     // the caller's layout is the primitive's
  dnnl::memory user_;    // around the caller's pointer, plain
  dnnl::memory own_;     // ours, in the primitive's layout (when a copy is needed)
  dnnl::reorder reorder_;  // plain → inner (input), inner → plain (output), inner + plain → plain (accumulate)
  const float* staged_ = nullptr;  // what the last input() staged
};

}  // namespace crema::onednn
