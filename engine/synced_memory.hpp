// One buffer mirrored on the host and (with CUDA) a device, copied lazily as in
// Caffe's SyncedMemory: whichever side was last written is the head, and the other
// side is refreshed only when it is read. Transfers are counted so that tests can
// prove a GPU training step moves no data across the bus.
//
// A third side, a LayoutCopy, lets CPU engines with layouts of their own (oneDNN's
// channel-blocked formats) hand activations to each other without converting: a
// layer that writes one makes it the head, and the plain host side is rebuilt from
// it only when somebody reads it, so checkpoints and every plain reader still see
// row-major values.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace crema {

// The contents of a SyncedMemory in a layout some CPU engine prefers, made and owned
// by that engine. engine/ knows only what any layer may do with it.
class LayoutCopy {
 public:
  virtual ~LayoutCopy() = default;
  // Writes the contents, plain row-major, to `plain` (as many floats as the blob
  // the copy was made for holds).
  virtual void to_plain(void* plain) = 0;
  // The buffer: float_count() floats, the values in this layout plus any padding the
  // layout adds, held at zero. Element-wise maps with f(0) = 0 may run on it as is.
  virtual float* floats() = 0;
  virtual size_t float_count() const = 0;
  // Whether `other` places the same elements at the same offsets, so that a map of
  // two buffers (a gradient and its value) can run on both.
  virtual bool same_layout(const LayoutCopy& other) const = 0;
  // b when the layout stores an (N, C, H, W) blob as (N, ceil(C/b), H, W, b): channels
  // in blocks of b, the last block padded with zeros; else 0. Per-channel loops
  // (BatchNorm, Scale) can run on such a layout as is.
  virtual int channel_block() const { return 0; }
  // Whether the copy was made for a blob of `shape`: blobs sharing one memory
  // (Reshape, Flatten) may see another blob's copy, fine for element-wise work and
  // plain reads, not for per-channel loops.
  virtual bool made_for(const std::vector<int>& shape) const = 0;
  // A new buffer in the same layout, its padding zero (an output a layer's own loop
  // fills in this layout).
  virtual std::shared_ptr<LayoutCopy> make_like() const = 0;
};


class SyncedMemory {
 public:
  // AtLayout: only the layout copy is current. A layout copy may also be current
  // beside AtCpu or Synced (layout() is then not null).
  enum class Head { Uninitialized, AtCpu, AtGpu, Synced, AtLayout };

  SyncedMemory() = default;
  explicit SyncedMemory(size_t bytes) : size_(bytes) {}
  ~SyncedMemory();
  SyncedMemory(const SyncedMemory&) = delete;
  SyncedMemory& operator=(const SyncedMemory&) = delete;

  const void* cpu_data();
  void* mutable_cpu_data();
  const void* gpu_data();
  void* mutable_gpu_data();
  size_t size() const { return size_; }
  Head head() const { return head_; }

  // The layout copy while it holds the current contents, else null.
  LayoutCopy* layout() const { return layout_.get(); }
  // `copy` now holds the contents: the plain sides are stale until read.
  void set_layout(std::shared_ptr<LayoutCopy> copy);
  // The current layout copy, to be changed in place: the plain sides become stale.
  // Only when layout() is not null.
  LayoutCopy* mutable_layout();
  // Brings the host side up to date and forgets the layout copy (a blob whose shape
  // changes: the copy's layout was for the old shape).
  void drop_layout();

  // Counts the writable accesses (mutable_*, set_layout, mutable_layout): a copy taken
  // earlier (a layer's staged input kept for backward) is still current only while this
  // has not changed, whoever wrote (a view of another shape, a later in-place layer).
  unsigned long long writes() const { return writes_; }

  static long host_to_device_copies() { return h2d_.load(); }
  static long device_to_host_copies() { return d2h_.load(); }

 private:
  void to_cpu();
  void to_gpu();

  size_t size_ = 0;
  void* cpu_ = nullptr;
  void* gpu_ = nullptr;
  int gpu_device_ = -1;
  Head head_ = Head::Uninitialized;
  std::shared_ptr<LayoutCopy> layout_;
  unsigned long long writes_ = 0;
  static std::atomic<long> h2d_, d2h_;
};

// A layer's output in an input's layout, kept from pass to pass.
class LayoutOutput {
 public:
  // The buffer for `m`'s next value in `like`'s layout: the kept one unless it has
  // another layout or still holds another memory's contents.
  LayoutCopy& prepare(const LayoutCopy& like, const SyncedMemory& m);
  // Hands the buffer filled since prepare() to `m` as its contents.
  void commit(SyncedMemory& m);

 private:
  std::shared_ptr<LayoutCopy> copy_;
};

}  // namespace crema
