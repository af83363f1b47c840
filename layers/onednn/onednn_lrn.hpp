// oneDNN local response normalisation for the LRN layer on the CPU, behind a plain
// interface. oneDNN's formula is Caffe's: y = x (k + alpha / n · Σ x²)^-beta with
// n = local_size across channels and local_size² within a channel. Primitives are
// built once per shape; backward uses oneDNN's workspace from forward. They work on
// channel blocks of 16, the layout a oneDNN convolution leaves its output in, so
// activations (blob memories, see onednn_common.hpp) pass between them unconverted.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "engine/synced_memory.hpp"

namespace crema::onednn {

struct LrnShape {
  bool across_channels = true;
  int num = 0, channels = 0, height = 0, width = 0;
  int local_size = 5;
  float alpha = 1.f, beta = 0.75f, k = 1.f;
  bool operator==(const LrnShape&) const = default;
};

class LRN {
 public:
  LRN();
  ~LRN();
  LRN(const LRN&) = delete;
  LRN& operator=(const LRN&) = delete;

  // Builds the primitives for `shape` unless built for it already; "" or why not. Unless
  // `reference_ok`, oneDNN's reference code is a why not: on channel counts that are no
  // multiple of 16 it is all oneDNN has, 5 to 11 times slower than crema's own kernels.
  std::string prepare(const LrnShape& shape, bool reference_ok);
  // y (N, C, H, W) = lrn(x (N, C, H, W))
  void forward(SyncedMemory& x, SyncedMemory& y);
  // dx (N, C, H, W) from x and dy (N, C, H, W), overwritten; after forward on x.
  void backward(SyncedMemory& x, SyncedMemory& dy, SyncedMemory& dx);
  // oneDNN's names of the forward and backward implementations built last, for tests.
  std::pair<std::string, std::string> implementations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
