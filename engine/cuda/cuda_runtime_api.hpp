// The few CUDA runtime calls the engine needs, behind plain C++ signatures so that
// engine code compiles without CUDA headers. In a build without CUDA every call
// throws "no usable CUDA device: crema was built without CUDA".
#pragma once

#include <cstddef>
#include <string>

namespace crema::cuda {

bool compiled_in();
// Number of usable devices; 0 with the reason in *why when none.
int device_count(std::string* why = nullptr);
// Throws Error("no usable CUDA device: ...") unless device `id` can be used.
void require_device(int id);

void* alloc_device(size_t bytes, int* device);
void free_device(void* p, int device) noexcept;
void zero_device(void* p, size_t bytes);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);

std::string runtime_version();  // "13.0" or "not compiled in"
std::string cudnn_version();    // "9.x.y" or "not compiled in"

}  // namespace crema::cuda
