// oneDNN pooling for the Pooling layer on the CPU, behind a plain interface. The
// layer decides where oneDNN computes Caffe's result (see pooling_layer.hpp); this
// only builds and runs the primitives, once per shape. MAX keeps oneDNN's workspace
// (the argmax of every window) from forward for backward, as the reference keeps
// its mask, so a later in-place layer changing the top does not matter.
// Activations are blob memories (onednn_common.hpp): pooling works in the layout its
// input arrives in, blocked after a oneDNN convolution, and leaves its output so.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "engine/synced_memory.hpp"
#include "layers/pool_geometry.hpp"

namespace crema::onednn {

struct PoolShape : PoolGeometry {
  enum class Method { max, average_with_padding, average_without_padding };
  Method method = Method::max;
  int num = 0, channels = 0;
  bool operator==(const PoolShape&) const = default;
};

class Pooling {
 public:
  Pooling();
  ~Pooling();
  Pooling(const Pooling&) = delete;
  Pooling& operator=(const Pooling&) = delete;

  // Builds the primitives for `shape` unless built for it already. Returns "" or,
  // when oneDNN cannot compute this pooling, why.
  std::string prepare(const PoolShape& shape);
  // y (N, C, PH, PW) = pool(x (N, C, H, W)); rebuilds the primitives when x comes in
  // another layout than last time.
  void forward(SyncedMemory& x, SyncedMemory& y);
  // dx (N, C, H, W) = the gradient from dy (N, C, PH, PW), overwritten; after forward.
  void backward(SyncedMemory& dy, SyncedMemory& dx);
  // oneDNN's names of the forward and backward implementations built last ("jit:avx512_core",
  // "ref:any"), for tests that the fast code runs.
  std::pair<std::string, std::string> implementations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
