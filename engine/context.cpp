#include "engine/context.hpp"

#include <chrono>

namespace crema {

namespace {
uint64_t resolve_seed(long long seed) {
  if (seed >= 0) return static_cast<uint64_t>(seed);
  return static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
}
}  // namespace

Context::Context(long long seed) : rng_(resolve_seed(seed)), seed_(seed) {}

std::unique_ptr<Context> Context::gpu(int device_id, long long seed) {
  auto ctx = std::make_unique<Context>(seed);
  ctx->cuda_ = cuda::CudaContext::create(device_id);
  ctx->device_ = Device{DeviceType::CUDA, device_id};
  return ctx;
}

}  // namespace crema
