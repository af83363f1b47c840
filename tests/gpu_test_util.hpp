// What every GPU test starts with: without a usable CUDA device it ends at once,
// reported by ctest as skipped (the "SKIPPED:" message, see tests/CMakeLists.txt).
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "engine/cuda/cuda_runtime_api.hpp"

namespace crema::test {

// Empty when a CUDA device can be used, else why not.
inline std::string no_device_reason() {
  std::string why;
  return cuda::device_count(&why) > 0 ? std::string() : why;
}

}  // namespace crema::test

#define SKIP_WITHOUT_DEVICE()                                           \
  do {                                                                  \
    const std::string crema_no_device_ = ::crema::test::no_device_reason(); \
    if (!crema_no_device_.empty()) {                                    \
      MESSAGE("SKIPPED: no CUDA device (" << crema_no_device_ << ")");  \
      return;                                                           \
    }                                                                   \
  } while (0)
