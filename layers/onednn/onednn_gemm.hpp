// A matrix product on oneDNN (its matmul), with the same row-major contract as
// cpu_gemm (engine/math.hpp): InnerProduct's three products on the CPU. In fp32 the
// primitive reads the caller's buffers as they are (transposes through strides);
// in bf16 the inputs are rounded to bfloat16 on the way in, and the product still
// accumulates, and C stays, in fp32. Built once per shape.
#pragma once

#include <memory>
#include <string>

namespace crema::onednn {

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // For C (M, N) = op(A) op(B) (+ C where `accumulate`); op(A): (M, K), op(B): (K, N);
  // A is (K, M) when trans_a, B is (N, K) when trans_b. Returns "" or why oneDNN
  // cannot build it.
  std::string prepare(bool trans_a, bool trans_b, int m, int n, int k, bool accumulate, bool bf16);
  void run(const float* a, const float* b, float* c);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
