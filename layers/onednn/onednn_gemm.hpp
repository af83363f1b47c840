// A matrix product in bfloat16 on oneDNN (its matmul), with the same row-major
// contract as cpu_gemm (engine/math.hpp): InnerProduct's three products under
// `precision: bf16`. The inputs are rounded to bf16 on the way in; the product
// accumulates, and C stays, in fp32. Built once per shape.
#pragma once

#include <memory>
#include <string>

namespace crema::onednn {

class Bf16Gemm {
 public:
  Bf16Gemm();
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  // For C (M, N) = op(A) op(B) (+ C where `accumulate`); op(A): (M, K), op(B): (K, N);
  // A is (K, M) when trans_a, B is (N, K) when trans_b. Returns "" or why oneDNN
  // cannot build it.
  std::string prepare(bool trans_a, bool trans_b, int m, int n, int k, bool accumulate);
  void run(const float* a, const float* b, float* c);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
