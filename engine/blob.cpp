#include "engine/blob.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "engine/error.hpp"
#include "engine/math.hpp"

namespace crema {

std::string shape_string(const std::vector<int>& shape) {
  std::string s;
  long long count = 1;
  for (int d : shape) {
    s += std::to_string(d) + " ";
    count *= d;
  }
  return s + "(" + std::to_string(count) + ")";
}

void Blob::reshape(const std::vector<int>& shape) {
  long long count = 1;
  for (int d : shape) {
    if (d < 0) throw Error("blob dimension must not be negative: " + crema::shape_string(shape));
    count *= d;
    if (count > INT_MAX) throw Error("blob of shape " + crema::shape_string(shape) + " exceeds 2^31 elements");
  }
  if (shape != shape_) {
    // A layout copy was made for the old shape; the values stay, in plain order.
    if (data_) data_->drop_layout();
    if (diff_) diff_->drop_layout();
  }
  shape_ = shape;
  count_ = static_cast<int>(count);
  // Checked per buffer: after share_data/share_diff a blob may hold another blob's
  // smaller buffer, so its own capacity says nothing about what it may write.
  const size_t bytes = static_cast<size_t>(count_) * sizeof(float);
  if (!data_ || data_->size() < bytes) data_ = std::make_shared<SyncedMemory>(bytes);
  if (!diff_ || diff_->size() < bytes) diff_ = std::make_shared<SyncedMemory>(bytes);
}

int Blob::count(int start, int end) const {
  long long c = 1;
  for (int i = start; i < end; ++i) c *= shape_[static_cast<size_t>(i)];
  return static_cast<int>(c);
}

int Blob::canonical_axis(int axis) const {
  const int n = num_axes();
  if (axis < -n || axis >= n)
    throw Error("axis " + std::to_string(axis) + " is out of range for a blob of shape " + shape_string());
  return axis < 0 ? axis + n : axis;
}

std::string Blob::shape_string() const { return crema::shape_string(shape_); }

const float* Blob::cpu_data() const { return static_cast<const float*>(data_->cpu_data()); }
const float* Blob::cpu_diff() const { return static_cast<const float*>(diff_->cpu_data()); }
float* Blob::mutable_cpu_data() { return static_cast<float*>(data_->mutable_cpu_data()); }
float* Blob::mutable_cpu_diff() { return static_cast<float*>(diff_->mutable_cpu_data()); }
const float* Blob::gpu_data() const { return static_cast<const float*>(data_->gpu_data()); }
const float* Blob::gpu_diff() const { return static_cast<const float*>(diff_->gpu_data()); }
float* Blob::mutable_gpu_data() { return static_cast<float*>(data_->mutable_gpu_data()); }
float* Blob::mutable_gpu_diff() { return static_cast<float*>(diff_->mutable_gpu_data()); }

void Blob::share_data(const Blob& other) {
  if (other.count_ != count_) throw Error("share_data: counts differ (" + shape_string() + " vs " + other.shape_string() + ")");
  data_ = other.data_;
}

void Blob::share_diff(const Blob& other) {
  if (other.count_ != count_) throw Error("share_diff: counts differ (" + shape_string() + " vs " + other.shape_string() + ")");
  diff_ = other.diff_;
}

void Blob::copy_from(const Blob& source, bool copy_diff, bool reshape) {
  if (source.count_ != count_ || source.shape_ != shape_) {
    if (!reshape && source.count_ != count_)
      throw Error("cannot copy a blob of shape " + source.shape_string() + " into one of shape " + shape_string());
    if (reshape) reshape_like(source);
  }
  if (count_ == 0) return;
  if (copy_diff)
    cpu_copy(count_, source.cpu_diff(), mutable_cpu_diff());
  else
    cpu_copy(count_, source.cpu_data(), mutable_cpu_data());
}

void Blob::set_data(float value) {
  float* p = mutable_cpu_data();
  std::fill(p, p + count_, value);
}

void Blob::set_diff(float value) {
  float* p = mutable_cpu_diff();
  std::fill(p, p + count_, value);
}

double Blob::sumsq_diff() const {
  const float* g = cpu_diff();
  double s = 0;
  for (int i = 0; i < count_; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

double Blob::asum_diff() const {
  const float* g = cpu_diff();
  double s = 0;
  for (int i = 0; i < count_; ++i) s += std::fabs(g[i]);
  return s;
}

}  // namespace crema
