// Blob and SyncedMemory: shapes, sharing, and the lazy host/device synchronisation.
// The device half runs where a CUDA device is present and reports SKIPPED otherwise.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "engine/blob.hpp"
#include "engine/context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "engine/layer.hpp"
#include "gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

using namespace crema;

namespace {
// A layer with only a CPU path, registered here so that the refusal test below never
// goes stale as real layers gain GPU paths (tests/test_gpu_layers.cpp lists it).
class CpuOnlyForTestLayer : public Layer {
 public:
  using Layer::Layer;
  const char* type() const override { return "CpuOnlyForTest"; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override { top[0]->reshape_like(*bottom[0]); }

 protected:
  void forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) override { top[0]->copy_from(*bottom[0]); }
};
CREMA_REGISTER_LAYER("CpuOnlyForTest", CpuOnlyForTestLayer);

}  // namespace

TEST_CASE("Blob shapes, counts, axes and Caffe's shape string") {
  Blob b({64, 20, 24, 24});
  CHECK(b.count() == 737280);
  CHECK(b.count(1) == 20 * 24 * 24);
  CHECK(b.count(1, 3) == 480);
  CHECK(b.shape(-1) == 24);
  CHECK(b.canonical_axis(-4) == 0);
  CHECK_THROWS_AS(b.canonical_axis(4), Error);
  CHECK(b.shape_string() == "64 20 24 24 (737280)");
  CHECK_THROWS_AS(Blob({-1, 2}), Error);
  CHECK_THROWS_WITH_AS(Blob({65536, 65536}), doctest::Contains("exceeds"), Error);
}

TEST_CASE("Blob memory starts zeroed and survives a shrinking reshape") {
  Blob b({3, 4});
  for (int i = 0; i < 12; ++i) CHECK(b.cpu_data()[i] == 0.f);
  b.mutable_cpu_data()[5] = 7.f;
  const float* before = b.cpu_data();
  b.reshape({2, 2});
  CHECK(b.cpu_data() == before);  // no reallocation when shrinking
  b.reshape({4, 4});
  CHECK(b.count() == 16);
}

TEST_CASE("share_data / share_diff alias memory, and a shared small buffer is never overrun") {
  Blob a({2, 3}), b({6});
  b.share_data(a);
  b.share_diff(a);
  a.mutable_cpu_data()[4] = 3.f;
  a.mutable_cpu_diff()[1] = -1.f;
  CHECK(b.cpu_data()[4] == 3.f);
  CHECK(b.cpu_diff()[1] == -1.f);
  // b was (6) and now holds a's 6-float buffers; growing b must give it its own.
  b.reshape({10});
  b.mutable_cpu_data()[9] = 1.f;
  CHECK(a.cpu_data()[4] == 3.f);
  CHECK_THROWS_AS(b.share_data(Blob({3})), Error);
}

TEST_CASE("copy_from checks counts unless asked to reshape") {
  Blob a({2, 2}), b({4}), c({3});
  a.set_data(2.f);
  b.copy_from(a);
  CHECK(b.cpu_data()[3] == 2.f);
  CHECK_THROWS_AS(c.copy_from(a), Error);
  c.copy_from(a, false, true);
  CHECK(c.shape() == a.shape());
}

namespace {
// A layout copy that stores its values reversed and padded with two zeros, so that
// a plain read that skipped the conversion would show.
class ReversedCopy : public LayoutCopy {
 public:
  explicit ReversedCopy(std::vector<float> plain) : values_(plain.rbegin(), plain.rend()) {
    values_.push_back(0.f);
    values_.push_back(0.f);
  }
  void to_plain(void* plain) override {
    ++conversions;
    auto* out = static_cast<float*>(plain);
    for (size_t i = 0; i + 2 < values_.size(); ++i) out[i] = values_[values_.size() - 3 - i];
  }
  float* floats() override { return values_.data(); }
  size_t float_count() const override { return values_.size(); }
  bool same_layout(const LayoutCopy& other) const override {
    return dynamic_cast<const ReversedCopy*>(&other) && other.float_count() == float_count();
  }
  bool made_for(const std::vector<int>& shape) const override {
    size_t n = 1;
    for (int d : shape) n *= static_cast<size_t>(d);
    return n + 2 == values_.size();
  }
  std::shared_ptr<LayoutCopy> make_like() const override {
    return std::make_shared<ReversedCopy>(std::vector<float>(values_.size() - 2));
  }
  int conversions = 0;

 private:
  std::vector<float> values_;
};

std::vector<float> data_of(const Blob& b) { return {b.cpu_data(), b.cpu_data() + b.count()}; }
}  // namespace

TEST_CASE("a layout copy is the head until read plain, and any plain write forgets it") {
  Blob b({2, 2});
  b.mutable_cpu_data()[0] = 9.f;
  auto copy = std::make_shared<ReversedCopy>(std::vector<float>{1, 2, 3, 4});
  b.data_memory()->set_layout(copy);
  CHECK(b.data_memory()->head() == SyncedMemory::Head::AtLayout);
  CHECK(copy->conversions == 0);  // nothing converted until somebody reads plain
  CHECK(data_of(b) == std::vector<float>{1, 2, 3, 4});
  CHECK(copy->conversions == 1);
  CHECK(data_of(b) == std::vector<float>{1, 2, 3, 4});
  CHECK(copy->conversions == 1);                // the plain side is current now ...
  CHECK(b.data_memory()->layout() == copy.get());  // ... and so is the copy still

  // Changed in place: the plain side is stale again.
  for (size_t i = 0; i < b.data_memory()->mutable_layout()->float_count(); ++i) copy->floats()[i] *= 10.f;
  CHECK(data_of(b) == std::vector<float>{10, 20, 30, 40});
  CHECK(copy->conversions == 2);

  // A plain write wins: the copy is forgotten and never converted again.
  b.mutable_cpu_data()[1] = -1.f;
  CHECK(b.data_memory()->layout() == nullptr);
  CHECK(data_of(b) == std::vector<float>{10, -1, 30, 40});
  CHECK(copy->conversions == 2);

  // A shape change keeps the values, plain.
  b.data_memory()->set_layout(std::make_shared<ReversedCopy>(std::vector<float>{5, 6, 7, 8}));
  b.reshape({4});
  CHECK(b.data_memory()->layout() == nullptr);
  CHECK(data_of(b) == std::vector<float>{5, 6, 7, 8});
  // Blobs sharing the memory share its layout copy too.
  Blob other({4});
  other.share_data(b);
  b.data_memory()->set_layout(std::make_shared<ReversedCopy>(std::vector<float>{4, 3, 2, 1}));
  CHECK(data_of(other) == std::vector<float>{4, 3, 2, 1});
}

TEST_CASE("without CUDA, asking for a device fails with one clear message") {
  if (cuda::compiled_in() && test::no_device_reason().empty()) {
    MESSAGE("SKIPPED: a CUDA device is present");
    return;
  }
  CHECK_THROWS_WITH_AS(Context::gpu(0), doctest::Contains("no usable CUDA device"), Error);
  Blob b({4});
  CHECK_THROWS_WITH_AS(b.gpu_data(), doctest::Contains("no usable CUDA device"), Error);
}

TEST_CASE("GPU: host and device copies synchronise lazily and transfers are counted") {
  SKIP_WITHOUT_DEVICE();
  auto ctx = Context::gpu(0, 1);
  REQUIRE(ctx->on_gpu());
  Blob b({1000});
  for (int i = 0; i < b.count(); ++i) b.mutable_cpu_data()[i] = static_cast<float>(i);
  const long h2d = SyncedMemory::host_to_device_copies(), d2h = SyncedMemory::device_to_host_copies();
  b.gpu_data();
  CHECK(SyncedMemory::host_to_device_copies() == h2d + 1);
  b.gpu_data();  // already in sync: no copy
  CHECK(SyncedMemory::host_to_device_copies() == h2d + 1);
  b.cpu_data();  // still in sync: no copy
  CHECK(SyncedMemory::device_to_host_copies() == d2h);
#ifdef CREMA_WITH_CUDA
  // A kernel writes on the device; reading on the host copies back once.
  Blob x({1000});
  x.set_data(1.f);
  cuda::gpu_axpy(*ctx->cuda(), b.count(), 2.f, x.gpu_data(), b.mutable_gpu_data());
  ctx->cuda()->synchronize();
  for (int i = 0; i < b.count(); ++i) CHECK(b.cpu_data()[i] == static_cast<float>(i) + 2.f);
  CHECK(SyncedMemory::device_to_host_copies() == d2h + 1);
  cuda::gpu_set(*ctx->cuda(), b.count(), -3.f, b.mutable_gpu_data());
  ctx->cuda()->synchronize();
  CHECK(b.cpu_data()[999] == -3.f);
#endif
}

TEST_CASE("GPU: a layer without a GPU path is refused by name, not run on the CPU") {
  SKIP_WITHOUT_DEVICE();
  auto ctx = Context::gpu(0, 1);
  LayerSpec spec;
  spec.name = "cpu_only1";
  spec.type = "CpuOnlyForTest";
  auto layer = LayerRegistry::instance().create(spec);
  CHECK(layer->supports(Device{}));
  CHECK_FALSE(layer->supports(ctx->device()));
  // Run anyway, forward fails naming the layer instead of falling back to the CPU.
  Blob x({3}), y;
  layer->setup(*ctx, {&x}, {&y});
  CHECK_THROWS_WITH_AS(layer->forward(*ctx, {&x}, {&y}), doctest::Contains("cpu_only1"), Error);
}

TEST_CASE("every registered layer type can be constructed") {
  const auto types = LayerRegistry::instance().types();
  CHECK(types.size() >= 21);
  for (const auto& t : types) {
    LayerSpec spec;
    spec.name = "probe";
    spec.type = t;
    INFO("layer type " << t);
    // Types whose parameters have required keys refuse the empty config with a
    // ConfigError; anything else (a crash, another exception) fails the test.
    try {
      auto layer = LayerRegistry::instance().create(spec);
      CHECK(std::string(layer->type()) == t);
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("required") != std::string::npos);
    }
  }
}
