#include "engine/synced_memory.hpp"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"

namespace crema {

std::atomic<long> SyncedMemory::h2d_{0};
std::atomic<long> SyncedMemory::d2h_{0};

namespace {
// 64-byte alignment suits AVX-512 loads and oneDNN/BLAS kernels.
constexpr size_t kAlign = 64;
void* host_alloc(size_t bytes) {
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

SyncedMemory::~SyncedMemory() {
  std::free(cpu_);
  if (gpu_) cuda::free_device(gpu_, gpu_device_);  // into the device's cache: the next blob of this size reuses it
}

void SyncedMemory::to_cpu() {
  switch (head_) {
    case Head::Uninitialized:
      cpu_ = host_alloc(size_);
      std::memset(cpu_, 0, size_);
      head_ = Head::AtCpu;
      break;
    case Head::AtGpu:
      if (!cpu_) cpu_ = host_alloc(size_);
      cuda::copy_to_host(cpu_, gpu_, size_);
      ++d2h_;
      head_ = Head::Synced;
      break;
    case Head::AtLayout:
      if (!cpu_) cpu_ = host_alloc(size_);
      layout_->to_plain(cpu_);
      head_ = Head::AtCpu;  // the layout copy stays current beside it
      break;
    case Head::AtCpu:
    case Head::Synced:
      break;
  }
}

void SyncedMemory::to_gpu() {
  if (head_ == Head::AtLayout) to_cpu();  // the device side is filled from the plain one
  switch (head_) {
    case Head::Uninitialized:
      if (!gpu_) gpu_ = cuda::alloc_device(size_, &gpu_device_);  // kept if zeroing failed before
      cuda::zero_device(gpu_, size_);
      head_ = Head::AtGpu;
      break;
    case Head::AtCpu:
      if (!gpu_) gpu_ = cuda::alloc_device(size_, &gpu_device_);
      cuda::copy_to_device(gpu_, cpu_, size_);
      ++h2d_;
      head_ = Head::Synced;
      break;
    case Head::AtGpu:
    case Head::Synced:
    case Head::AtLayout:
      break;
  }
}

void SyncedMemory::set_layout(std::shared_ptr<LayoutCopy> copy) {
  ++writes_;
  layout_ = std::move(copy);
  head_ = Head::AtLayout;
}

LayoutCopy* SyncedMemory::mutable_layout() {
  assert(layout_);
  ++writes_;
  head_ = Head::AtLayout;
  return layout_.get();
}

LayoutCopy& LayoutOutput::prepare(const LayoutCopy& like, const SyncedMemory& m) {
  const bool held_elsewhere = copy_.use_count() > 1 && m.layout() != copy_.get();
  if (!copy_ || held_elsewhere || !copy_->same_layout(like)) copy_ = like.make_like();
  return *copy_;
}

void LayoutOutput::commit(SyncedMemory& m) { m.set_layout(copy_); }

void SyncedMemory::drop_layout() {
  if (!layout_) return;
  to_cpu();
  layout_.reset();
}

const void* SyncedMemory::cpu_data() {
  to_cpu();
  return cpu_;
}

void* SyncedMemory::mutable_cpu_data() {
  ++writes_;
  to_cpu();
  head_ = Head::AtCpu;
  layout_.reset();
  return cpu_;
}

const void* SyncedMemory::gpu_data() {
  to_gpu();
  return gpu_;
}

void* SyncedMemory::mutable_gpu_data() {
  ++writes_;
  to_gpu();
  head_ = Head::AtGpu;
  layout_.reset();
  return gpu_;
}

}  // namespace crema
