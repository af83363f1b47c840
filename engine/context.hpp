// Where and how layers run: the device (CPU or a CUDA device with its stream and
// library handles) and the random stream that dropout, fillers and shuffling draw
// from. Passed to every layer call, so there is no global mode.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/cuda/cuda_context.hpp"
#include "engine/rng.hpp"

namespace crema {

enum class DeviceType { CPU, CUDA };

// The arithmetic of the products (convolutions, inner products): fp32; bf16 inputs
// with fp32 accumulation, outputs and master weights on the CPU (`precision: bf16`,
// oneDNN); or TF32 inputs (10-bit mantissas) with fp32 accumulation on a GPU's tensor
// cores (`precision: tf32`, cuDNN and cuBLAS, as PyTorch's allow_tf32).
enum class Precision { fp32, bf16, tf32 };

// "fp32", "bf16", "tf32": the names configs and --precision use, in Precision's order.
const std::vector<std::string>& precision_names();
const char* precision_name(Precision p);
// Throws Error for a name not in precision_names().
Precision precision_from_name(const std::string& name);

struct Device {
  DeviceType type = DeviceType::CPU;
  int id = 0;
  std::string str() const { return type == DeviceType::CPU ? "CPU" : "GPU " + std::to_string(id); }
};

class Context {
 public:
  // CPU context; seed < 0 seeds from the clock (Caffe's random_seed: -1).
  explicit Context(long long seed = -1);
  // GPU context on `device_id`; throws "no usable CUDA device: ..." when impossible.
  static std::unique_ptr<Context> gpu(int device_id, long long seed = -1);

  const Device& device() const { return device_; }
  bool on_gpu() const { return device_.type == DeviceType::CUDA; }
  cuda::CudaContext* cuda() const { return cuda_.get(); }
  Rng& rng() { return rng_; }
  // A seed drawn from rng() the first time `key` is asked for, and the same one after: for
  // layers that must draw alike (data layers shuffling their paired samples in one order).
  uint64_t shared_seed(const std::string& key);
  // The seed the random stream started from: the one given, or the clock's draw for a
  // negative one (32 bits, as the stream takes), so that a log can say how to repeat it.
  uint32_t seed() const { return seed_; }
  Precision precision() const { return precision_; }
  // tf32 also lets the GPU's cuBLAS handle use tensor cores; it throws Error on the CPU.
  void set_precision(Precision p);

 private:
  Device device_;
  std::unique_ptr<cuda::CudaContext> cuda_;
  uint32_t seed_;
  Rng rng_;
  std::map<std::string, uint64_t> shared_seeds_;
  Precision precision_ = Precision::fp32;
};

}  // namespace crema
