// A matrix product on oneDNN (its matmul), with the same row-major contract as
// cpu_gemm (engine/math.hpp): InnerProduct's three products on the CPU. In fp32 the
// primitive reads the caller's buffers as they are (transposes through strides);
// in bf16 the inputs are rounded to bfloat16 on the way in (or B comes rounded, a
// RoundedCopy), and the product still accumulates, and C stays, in fp32. Built once
// per shape.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine/synced_memory.hpp"

namespace crema::onednn {

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // For C (M, N) = op(A) op(B) (+ C where `accumulate`); op(A): (M, K), op(B): (K, N);
  // A is (K, M) when trans_a, B is (N, K) when trans_b. `b_rounded` (with bf16): run's B
  // is given in bfloat16 (a RoundedCopy), in the same row-major layout. Returns "" or
  // why oneDNN cannot build it.
  std::string prepare(bool trans_a, bool trans_b, int m, int n, int k, bool accumulate, bool bf16,
                      bool b_rounded = false);
  // a and c: float; b: float, or bfloat16 where prepared with b_rounded.
  void run(const float* a, const void* b, float* c);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A parameter's values rounded to bfloat16, in its own plain layout, made again only
// when the parameter was written since (its SyncedMemory's writes()). A bf16
// InnerProduct reads its weights twice a step (forward and input gradient), a test
// pass or iter_size more often between two updates, and at a small batch rounding
// them costs more than the product: oneDNN's own f32-to-blocked-bf16 reorder of
// AlexNet's fc6 weights took 3x its product, and ran in both passes.
class RoundedCopy {
 public:
  RoundedCopy();
  ~RoundedCopy();
  RoundedCopy(const RoundedCopy&) = delete;
  RoundedCopy& operator=(const RoundedCopy&) = delete;

  // The first `count` floats of `m` in bfloat16: (count) bf16 values, valid until the
  // next call.
  const void* of(const std::shared_ptr<SyncedMemory>& m, size_t count);
  // How many times any RoundedCopy rounded (tests count them).
  static long roundings();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
