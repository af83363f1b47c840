// `crema device`: Caffe's device_query, and one plain line when there is no device.
#include <doctest/doctest.h>

#include <algorithm>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "gpu_test_util.hpp"
#include "test_util.hpp"

using namespace crema;

TEST_CASE("crema device without a usable CUDA device says so in one line and exits 1") {
  if (test::no_device_reason().empty()) {
    MESSAGE("SKIPPED: a CUDA device is present, so this no-device test does not apply");
    return;
  }
  for (const char* args : {"device", "device --gpu 0"}) {
    const auto r = test::run(test::crema_binary() + " " + args);
    CHECK_MESSAGE(r.status == 1, r.output);
    CHECK_MESSAGE(r.output.rfind("no usable CUDA device: ", 0) == 0, r.output);
    CHECK_MESSAGE(std::count(r.output.begin(), r.output.end(), '\n') == 1, r.output);
    CHECK(r.output.find("terminate") == std::string::npos);
  }
  // The reason is the same as the engine's.
  const auto r = test::run(test::crema_binary() + " device");
  CHECK_MESSAGE(r.output.find(test::no_device_reason()) != std::string::npos, r.output);
}

TEST_CASE("crema device --gpu takes a device id") {
  const auto r = test::run(test::crema_binary() + " device --gpu -1");
  CHECK(r.status == 2);
}

TEST_CASE("GPU: crema device prints each device's name and compute capability") {
  SKIP_WITHOUT_DEVICE();
  const auto devices = cuda::query_devices();
  REQUIRE(!devices.empty());
  // It exits 1 when this build's kernels run on none of them (an architecture too old).
  const bool any_usable = std::any_of(devices.begin(), devices.end(), [](const auto& d) { return d.kernels_supported; });
  auto r = test::run(test::crema_binary() + " device");
  CHECK_MESSAGE(r.status == (any_usable ? 0 : 1), r.output);
  CHECK(r.output.find("cuDNN " + cuda::loaded_cudnn_version()) != std::string::npos);
  for (const auto& d : devices) {
    CHECK_MESSAGE(r.output.find("Device " + std::to_string(d.id) + ": " + d.name) != std::string::npos, r.output);
    CHECK(r.output.find(std::to_string(d.major) + "." + std::to_string(d.minor)) != std::string::npos);
    const size_t tf32 = r.output.find("TF32 tensor cores:", r.output.find("Device " + std::to_string(d.id) + ":"));
    REQUIRE(tf32 != std::string::npos);
    const size_t answer = r.output.find_first_not_of(' ', tf32 + 18);
    CHECK(r.output.compare(answer, d.major >= 8 ? 3 : 2, d.major >= 8 ? "yes" : "no") == 0);
    CHECK(d.total_memory > 0);
    CHECK(d.free_memory <= d.total_memory);
    CHECK(d.multiprocessors > 0);
  }
  // One device only; a missing one is the usual one-line error.
  r = test::run(test::crema_binary() + " device --gpu 0");
  CHECK_MESSAGE(r.status == (devices[0].kernels_supported ? 0 : 1), r.output);
  CHECK(r.output.find("Device 0: " + devices[0].name) != std::string::npos);
  CHECK(r.output.find("Device 1:") == std::string::npos);
  r = test::run(test::crema_binary() + " device --gpu 99");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("no usable CUDA device: device 99 requested") != std::string::npos, r.output);
}
