// What crema's oneDNN engines share: the process's CPU engine, this thread's stream,
// and Staged, which carries data between a layer's plain row-major buffer (NCHW,
// OIHW, what every blob holds) and the layout a primitive prefers. Only the oneDNN
// sources include this header; the layers see plain interfaces.
//
// Activations travel between oneDNN primitives in the primitives' own layouts: a
// primitive's output in a blocked layout becomes its blob's LayoutCopy (a
// BlockedCopy), and the next oneDNN primitive that wants that layout takes it as
// is. Anybody else reads the blob plain, converted on demand.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <memory>
#include <string>

#include "engine/synced_memory.hpp"

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

// A blob's contents in a oneDNN layout (f32), the LayoutCopy of its SyncedMemory.
class BlockedCopy final : public LayoutCopy {
 public:
  explicit BlockedCopy(const dnnl::memory::desc& desc);
  dnnl::memory& memory() { return memory_; }
  const dnnl::memory::desc& desc() const { return desc_; }

  void to_plain(void* plain) override;
  float* floats() override { return static_cast<float*>(memory_.get_data_handle()); }
  size_t float_count() const override { return desc_.get_size() / sizeof(float); }
  bool same_layout(const LayoutCopy& other) const override;
  int channel_block() const override { return channel_block_; }
  bool made_for(const std::vector<int>& shape) const override;
  std::shared_ptr<LayoutCopy> make_like() const override;

 private:
  dnnl::memory::desc desc_;
  int channel_block_ = 0;  // 16 or 8 for oneDNN's nChw16c and nChw8c, else 0
  dnnl::memory memory_;
  dnnl::reorder to_plain_;  // built on first use
  dnnl::memory plain_;
};

// The layout `m`'s current contents are in for a primitive: its BlockedCopy's, or
// plain `dims` when it has none.
dnnl::memory::desc current_desc(SyncedMemory& m, const dnnl::memory::dims& dims);

// One argument of a primitive: the caller's plain buffer on one side, the
// primitive's layout on the other, a copy between them only where they differ.
// Activations are passed as the blob's SyncedMemory, so that a layout copy another
// oneDNN primitive left there can serve as is, and an output in a blocked layout can
// stay in it (a BlockedCopy) for the next one; parameters are passed as pointers.
class Staged {
 public:
  enum class Role { input, output, accumulate };
  // `plain`: the caller's layout; `inner`: what the primitive was built with.
  void prepare(const dnnl::memory::desc& plain, const dnnl::memory::desc& inner, Role role);

  // An input from an activation: its layout copy when that is in the primitive's
  // layout, else a copy made now (from the layout copy or the plain values).
  dnnl::memory& input(SyncedMemory& m);
  // The copy the last input(m) made, when it was of `m` and not forgotten since;
  // else null (then input(m) again costs nothing when no copy is needed). Lets two
  // primitives that take the same activation in the same layout (a convolution's
  // forward and weight gradient) share one copy.
  dnnl::memory* staged(const SyncedMemory& m);
  // An output into an activation: the memory the primitive fills; finish_output(m)
  // then hands it to `m`, as its layout copy where it is not plain.
  dnnl::memory& output(SyncedMemory& m);
  void finish_output(SyncedMemory& m);

  // An input: memory in the primitive's layout holding what `p` holds (`p` itself
  // when the layouts agree, else a copy made now).
  dnnl::memory& input(const float* p) { return input_of_type(p); }
  // The same for values of the plain desc's own data type (bf16 weights, a RoundedCopy).
  dnnl::memory& input_of_type(const void* p);
  void forget() { staged_ = nullptr; }
  // An output the primitive fills; finish_output then moves it to `p` (output) or
  // adds it to `p` (accumulate: Caffe accumulates parameter gradients, and
  // oneDNN's primitives overwrite theirs).
  dnnl::memory& output(float* p);
  void finish_output();

 private:
  Role role_ = Role::input;
  bool same_ = true;     // the caller's layout is the primitive's
  dnnl::memory::desc inner_;
  dnnl::memory user_;    // around the caller's pointer, plain
  dnnl::memory own_;     // ours, in the primitive's layout (when a copy is needed; an output's is out_'s)
  std::shared_ptr<BlockedCopy> out_;  // an output in a blocked layout, handed to its blob
  dnnl::reorder reorder_;  // plain → inner (input), inner → plain (output), inner + plain → plain (accumulate)
  dnnl::memory::desc relayout_from_;  // an input's other blocked layout ...
  dnnl::reorder relayout_;            // ... and its reorder to inner, built when first met
  const void* staged_ = nullptr;  // what the last input() copied from (a pointer or a SyncedMemory)
  unsigned long long staged_writes_ = 0;  // that memory's writes() when copied
};

}  // namespace crema::onednn
