#include "engine/context.hpp"

#include <algorithm>
#include <chrono>

#include "engine/error.hpp"

namespace crema {

namespace {
uint32_t resolve_seed(long long seed) {
  if (seed >= 0) return static_cast<uint32_t>(seed);
  return static_cast<uint32_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
}
}  // namespace

Context::Context(long long seed) : seed_(resolve_seed(seed)), rng_(seed_) {}

uint64_t Context::shared_seed(const std::string& key) {
  const auto [it, drawn] = shared_seeds_.try_emplace(key, 0);
  if (drawn) it->second = rng_.next_u32();
  return it->second;
}

std::unique_ptr<Context> Context::gpu(int device_id, long long seed) {
  auto ctx = std::make_unique<Context>(seed);
  ctx->cuda_ = cuda::CudaContext::create(device_id);
  ctx->device_ = Device{DeviceType::CUDA, device_id};
  return ctx;
}

const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names = {"fp32", "bf16", "tf32"};
  return names;
}

const char* precision_name(Precision p) { return precision_names()[static_cast<size_t>(p)].c_str(); }

Precision precision_from_name(const std::string& name) {
  const auto& names = precision_names();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw Error("unknown precision '" + name + "'; use fp32, bf16 or tf32");
  return static_cast<Precision>(it - names.begin());
}

void Context::set_precision(Precision p) {
  if (p == Precision::tf32 && !on_gpu())
    throw Error(
        "precision: tf32 runs on a GPU's tensor cores (cuDNN, cuBLAS); on the CPU use precision: fp32, or "
        "bf16 (oneDNN)");
  if (cuda_) cuda_->allow_tf32(p == Precision::tf32);
  precision_ = p;
}

}  // namespace crema
