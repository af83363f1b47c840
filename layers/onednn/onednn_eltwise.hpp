// oneDNN element-wise activations (ReLU, Sigmoid, TanH) on the CPU, behind a plain
// interface. Each runs in the layout its input arrives in: blocked after a oneDNN
// convolution (onednn_common.hpp), plain otherwise, the primitives rebuilt when that
// layout changes, as Pooling's are. Backward reads the output, not the input
// (oneDNN's *_use_dst_for_bwd algorithms), so the layers still run in place; for
// ReLU that needs negative_slope >= 0, as crema's reference does.
#pragma once

#include <memory>
#include <string>

#include "engine/synced_memory.hpp"

namespace crema::onednn {

struct EltwiseOp {
  enum class Kind { relu, logistic, tanh };
  Kind kind = Kind::relu;
  float alpha = 0.f;  // relu: the negative slope
  long count = 0;     // values in a blob
  bool operator==(const EltwiseOp&) const = default;
};

class Eltwise {
 public:
  Eltwise();
  ~Eltwise();
  Eltwise(const Eltwise&) = delete;
  Eltwise& operator=(const Eltwise&) = delete;

  // Builds the primitives for `op` unless built for it already. Returns "" or, when
  // oneDNN cannot compute it as the reference does, why.
  std::string prepare(const EltwiseOp& op);
  // y (count) = f(x (count)); y may be x's memory.
  void forward(SyncedMemory& x, SyncedMemory& y);
  // dx (count) = dy · f'(from y); dx may be dy's memory. After forward.
  void backward(SyncedMemory& y, SyncedMemory& dy, SyncedMemory& dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
