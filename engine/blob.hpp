// Blob: an N-D float32 array with a value (`data`) and a gradient (`diff`), each in
// a SyncedMemory so that layers on either device read the current copy.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/synced_memory.hpp"

namespace crema {

class Blob {
 public:
  Blob() = default;
  explicit Blob(const std::vector<int>& shape) { reshape(shape); }

  // Keeps the memory when the new count fits; new memory starts zeroed.
  void reshape(const std::vector<int>& shape);
  void reshape_like(const Blob& other) { reshape(other.shape()); }

  const std::vector<int>& shape() const { return shape_; }
  int shape(int axis) const { return shape_[canonical_axis(axis)]; }
  int num_axes() const { return static_cast<int>(shape_.size()); }
  int count() const { return count_; }
  int count(int start, int end) const;  // product of dims [start, end)
  int count(int start) const { return count(start, num_axes()); }
  // Negative axes count from the end (-1 = last); throws on out of range.
  int canonical_axis(int axis) const;
  // "64 20 24 24 (737280)", as Caffe logs it.
  std::string shape_string() const;

  const float* cpu_data() const;
  const float* cpu_diff() const;
  float* mutable_cpu_data();
  float* mutable_cpu_diff();
  const float* gpu_data() const;
  const float* gpu_diff() const;
  float* mutable_gpu_data();
  float* mutable_gpu_diff();

  // Makes this blob use `other`'s memory (shared weights, in-place reshapes).
  void share_data(const Blob& other);
  void share_diff(const Blob& other);
  // Copies values; shapes must have equal counts unless `reshape` is set.
  void copy_from(const Blob& source, bool copy_diff = false, bool reshape = false);

  void set_data(float value);
  void set_diff(float value);
  double sumsq_diff() const;
  double asum_diff() const;

  std::shared_ptr<SyncedMemory>& data_memory() { return data_; }
  std::shared_ptr<SyncedMemory>& diff_memory() { return diff_; }
  const std::shared_ptr<SyncedMemory>& data_memory() const { return data_; }
  const std::shared_ptr<SyncedMemory>& diff_memory() const { return diff_; }

 private:
  std::vector<int> shape_;
  int count_ = 0;
  std::shared_ptr<SyncedMemory> data_;
  std::shared_ptr<SyncedMemory> diff_;
};

using BlobPtr = std::shared_ptr<Blob>;
using BlobVec = std::vector<Blob*>;

std::string shape_string(const std::vector<int>& shape);

}  // namespace crema
