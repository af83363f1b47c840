// oneDNN batch normalisation (no scale or shift, as Caffe's BatchNorm) for the
// BatchNorm layer on the CPU, behind a plain interface. The layer keeps Caffe's
// running sums; this computes y = (x - mean) / sqrt(var + eps) per channel with the
// batch's mean and biased variance (returned) or given global ones, and its gradient.
#pragma once

#include <memory>
#include <string>

namespace crema::onednn {

struct BatchNormShape {
  int num = 0, channels = 0, height = 1, width = 1;  // (N, C) bottoms have height = width = 1
  float eps = 1e-5f;
  bool global_stats = false;
  bool operator==(const BatchNormShape&) const = default;
};

class BatchNorm {
 public:
  BatchNorm();
  ~BatchNorm();
  BatchNorm(const BatchNorm&) = delete;
  BatchNorm& operator=(const BatchNorm&) = delete;

  // Builds the primitives for `shape` unless built for it already; "" or why not.
  std::string prepare(const BatchNormShape& shape);
  // y (N, C, H, W) from x (not aliased); mean, var (C): written with batch
  // statistics, read with global ones.
  void forward(const float* x, float* mean, float* var, float* y);
  // dx (N, C, H, W) from x, the forward's mean and var (C), and dy; dx may alias dy.
  void backward(const float* x, const float* mean, const float* var, const float* dy, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crema::onednn
