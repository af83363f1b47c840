// The cuDNN-backed layers (Convolution, Deconvolution, Pooling, LRN, BatchNorm) on
// the GPU against their CPU reference: identical inputs and parameters, every top,
// bottom gradient and parameter blob compared by normalised error, for each engine
// and the shapes where cuDNN and crema's kernels take turns. Without a device each
// GPU case reports SKIPPED; the config checks run everywhere.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "engine/synced_memory.hpp"
#include "layers/base_conv_layer.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using namespace crema::test;

namespace {
// Empty when a device is usable, else why not.
// ||got - want|| / ||want||; NaN anywhere gives NaN, which fails every bound.
double normalised_error(const float* got, const float* want, int n) {
  double diff = 0, norm = 0;
  for (int i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

// Within `bound` by normalised error; returns the error.
double check_close(const char* what, int index, const float* got, const float* want, int n, double bound = 1e-4) {
  INFO(what << " " << index);
  const double e = normalised_error(got, want, n);
  CHECK(e <= bound);
  return e;
}

// TF32 rounds each input of a product to 11 significant bits (relative error up to
// 2^-11 ≈ 4.9e-4 per factor); sums of such products stay well inside this bound.
constexpr double kTf32Bound = 5e-3;

// Sets parameter blobs of the reference layer before they are copied to the GPU one.
using ParamInit = std::function<void(Layer&)>;

// Runs `yaml` on bottom `shape` with `num_tops` tops on the CPU and on GPU 0 from
// the same input, parameters and top gradients, and compares everything. Then runs
// the GPU pass again and checks it moved nothing between host and device. With
// `precision` tf32 the GPU computes under TF32 and the bound is TF32's. Returns the
// largest normalised error seen.
double check_gpu_matches_cpu(const std::string& yaml, const std::vector<int>& shape, int num_tops = 1,
                             Phase phase = Phase::TRAIN, const ParamInit& init = nullptr,
                             const std::function<float(float)>& input = nullptr,
                             Precision precision = Precision::fp32) {
  INFO("layer " << yaml << " on " << crema::shape_string(shape) << ", GPU in " << precision_name(precision));
  const double bound = precision == Precision::tf32 ? kTf32Bound : 1e-4;
  double worst = 0;
  const auto check_close = [&](const char* what, int index, const float* got, const float* want, int n) {
    worst = std::max(worst, ::check_close(what, index, got, want, n, bound));
  };
  Context cpu(1);
  auto gpu = Context::gpu(0, 1);
  gpu->set_precision(precision);
  auto ref = make_layer(yaml, phase), dut = make_layer(yaml, phase);
  REQUIRE(dut.layer->supports(gpu->device()));
  Blob x_cpu = gaussian_blob({shape}), x_gpu;
  if (input)  // reshapes the gaussian values (ties, offsets)
    for (int i = 0; i < x_cpu.count(); ++i) x_cpu.mutable_cpu_data()[i] = input(x_cpu.cpu_data()[i]);
  x_gpu.copy_from(x_cpu, false, true);
  Blob y_cpu[2], y_gpu[2];
  BlobVec top_cpu, top_gpu;
  for (int t = 0; t < num_tops; ++t) {
    top_cpu.push_back(&y_cpu[t]);
    top_gpu.push_back(&y_gpu[t]);
  }
  ref.layer->setup(cpu, {&x_cpu}, top_cpu);
  dut.layer->setup(*gpu, {&x_gpu}, top_gpu);
  if (init) init(*ref.layer);
  auto& ref_params = ref.layer->blobs();
  auto& dut_params = dut.layer->blobs();
  REQUIRE(ref_params.size() == dut_params.size());
  for (size_t i = 0; i < ref_params.size(); ++i) dut_params[i]->copy_from(*ref_params[i]);

  ref.layer->forward(cpu, {&x_cpu}, top_cpu);
  dut.layer->forward(*gpu, {&x_gpu}, top_gpu);
  gpu->cuda()->synchronize();
  for (int t = 0; t < num_tops; ++t) {
    REQUIRE(y_gpu[t].shape() == y_cpu[t].shape());
    check_close("top", t, y_gpu[t].cpu_data(), y_cpu[t].cpu_data(), y_cpu[t].count());
  }
  // BatchNorm's running statistics change in forward.
  for (size_t i = 0; i < ref_params.size(); ++i)
    check_close("parameter blob", static_cast<int>(i), dut_params[i]->cpu_data(), ref_params[i]->cpu_data(),
                ref_params[i]->count());

  Rng rng(11);
  for (int t = 0; t < num_tops; ++t) {
    // Drawn aside: backward reads the tops' data (LRN's y, pooling's mask), which must stay
    // what forward wrote.
    Blob dy(y_cpu[t].shape());
    fill_gaussian(dy, rng);
    std::copy(dy.cpu_data(), dy.cpu_data() + dy.count(), y_cpu[t].mutable_cpu_diff());
    std::copy(dy.cpu_data(), dy.cpu_data() + dy.count(), y_gpu[t].mutable_cpu_diff());
  }
  for (size_t i = 0; i < ref_params.size(); ++i) {
    ref_params[i]->set_diff(0.f);
    dut_params[i]->set_diff(0.f);
  }
  const std::vector<bool> down(1, true);
  ref.layer->backward(cpu, top_cpu, down, {&x_cpu});
  dut.layer->backward(*gpu, top_gpu, down, {&x_gpu});
  gpu->cuda()->synchronize();
  check_close("bottom diff", 0, x_gpu.cpu_diff(), x_cpu.cpu_diff(), x_cpu.count());
  for (size_t i = 0; i < ref_params.size(); ++i)
    if (ref.layer->param_propagate_down(static_cast<int>(i)))
      check_close("parameter diff", static_cast<int>(i), dut_params[i]->cpu_diff(), ref_params[i]->cpu_diff(),
                  ref_params[i]->count());

  // A second GPU step with everything already on the device copies nothing.
  x_gpu.gpu_data();
  x_gpu.gpu_diff();
  for (auto& p : dut_params) {
    p->gpu_data();
    p->gpu_diff();
  }
  for (int t = 0; t < num_tops; ++t) {
    y_gpu[t].gpu_data();
    y_gpu[t].gpu_diff();
  }
  const long h2d = SyncedMemory::host_to_device_copies(), d2h = SyncedMemory::device_to_host_copies();
  dut.layer->forward(*gpu, {&x_gpu}, top_gpu);
  dut.layer->backward(*gpu, top_gpu, down, {&x_gpu});
  gpu->cuda()->synchronize();
  CHECK(SyncedMemory::host_to_device_copies() == h2d);
  CHECK(SyncedMemory::device_to_host_copies() == d2h);
  return worst;
}

const char* kFillers = "weight_filler: {type: gaussian, std: 0.5}, bias_filler: {type: gaussian, std: 0.5}";

std::string conv(const std::string& type, const std::string& params) {
  return "{type: " + type + ", convolution_param: {" + params + ", " + kFillers + "}}";
}
}  // namespace

TEST_CASE("GPU cuDNN: Convolution matches the CPU with groups, dilation, stride and padding") {
  SKIP_WITHOUT_DEVICE();
  check_gpu_matches_cpu(conv("Convolution", "num_output: 4, kernel_size: 3, pad: 1"), {2, 3, 7, 7});
  check_gpu_matches_cpu(conv("Convolution", "num_output: 6, kernel_size: 3, stride: 2, pad: 1, group: 3"),
                        {2, 6, 9, 8});
  check_gpu_matches_cpu(conv("Convolution",
                             "num_output: 4, kernel_h: 3, kernel_w: 2, stride_h: 2, stride_w: 1, dilation: 2, "
                             "bias_term: false"),
                        {2, 2, 9, 9});
  check_gpu_matches_cpu(conv("Convolution", "num_output: 5, kernel_size: 1, engine: CUDNN"), {3, 4, 5, 5});
}

TEST_CASE("GPU cuDNN: Deconvolution matches the CPU with groups, dilation, stride and padding") {
  SKIP_WITHOUT_DEVICE();
  check_gpu_matches_cpu(conv("Deconvolution", "num_output: 4, kernel_size: 3, stride: 2, pad: 1"), {2, 3, 4, 5});
  check_gpu_matches_cpu(conv("Deconvolution", "num_output: 4, kernel_size: 4, stride: 2, group: 2"), {2, 4, 3, 3});
  check_gpu_matches_cpu(conv("Deconvolution", "num_output: 3, kernel_size: 3, dilation: 2, pad: 1, bias_term: false"),
                        {2, 2, 5, 5});
}

TEST_CASE("GPU cuDNN: Pooling matches the CPU on ceil shapes, AVE padding and empty windows") {
  SKIP_WITHOUT_DEVICE();
  // Ceil shapes (crema's kernels), with the argmax mask as a second top.
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2}}", {2, 3, 8, 8}, 2);
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, pad: 1}}", {2, 3, 8, 7});
  // AVE whose last window passes the padded image: divided by the clipped window.
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1}}", {2, 3, 8, 8});
  // Floor-equal shapes: cuDNN (DEFAULT and CUDNN for AVE), and the kernels by request.
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1}}", {2, 3, 7, 7});
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1, engine: CAFFE}}",
                        {2, 3, 7, 7});
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 2, stride: 2, engine: CUDNN}}",
                        {2, 3, 8, 6});
  // Overlapping MAX windows on ReLU-like data (many ties at 0): the first maximum, as on the CPU.
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 1}}", {2, 3, 6, 6}, 1,
                        Phase::TRAIN, nullptr, [](float v) { return std::max(v, 0.f); });
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, global_pooling: true}}", {2, 3, 5, 4});
  // The ceil rule places the last window wholly past the image: 0, mask -1, no gradient.
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 1, stride: 3}}", {1, 2, 5, 5}, 2);
  check_gpu_matches_cpu("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 1, stride: 3}}", {1, 2, 5, 5});
}

TEST_CASE("GPU cuDNN: engine CUDNN is refused where cuDNN cannot pool like Caffe") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, 1);
  auto t = make_layer("{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, engine: CUDNN}}");
  Blob x({1, 1, 8, 8}), y;
  t.layer->setup(*gpu, {&x}, {&y});
  CHECK_THROWS_WITH_AS(t.layer->forward(*gpu, {&x}, {&y}), doctest::Contains("engine: CUDNN cannot"), Error);
  // MAX: cuDNN's backward re-derives the argmax from the top, which in-place layers may change;
  // refused when the net is set up, not hours later at the first forward.
  auto m = make_layer("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 2, stride: 2, engine: CUDNN}}");
  CHECK_THROWS_WITH_AS(m.layer->setup(*gpu, {&x}, {&y}), doctest::Contains("not offered for MAX pooling"), Error);
}

TEST_CASE("GPU cuDNN: LRN matches the CPU across and within channels") {
  SKIP_WITHOUT_DEVICE();
  check_gpu_matches_cpu("{type: LRN, lrn_param: {local_size: 3, alpha: 0.5, beta: 0.75, k: 2}}", {2, 7, 3, 3});
  check_gpu_matches_cpu("{type: LRN, lrn_param: {local_size: 5, alpha: 0.5, beta: 0.75, k: 2, engine: CAFFE}}",
                        {2, 7, 3, 3});
  check_gpu_matches_cpu("{type: LRN, lrn_param: {local_size: 3, alpha: 0.5, norm_region: WITHIN_CHANNEL}}",
                        {2, 3, 5, 4});
}

TEST_CASE("GPU cuDNN: LRN's gradient holds when a later in-place layer rewrites its top") {
  SKIP_WITHOUT_DEVICE();
  // An in-place ReLU after LRN (as in AlexNet-style nets) zeroes the negative outputs
  // before backward runs; the gradient must still be the one of the LRN that ran.
  for (const char* engine : {"CUDNN", "CAFFE"}) {
    const std::string yaml =
        std::string("{type: LRN, lrn_param: {local_size: 5, alpha: 0.5, beta: 0.75, k: 2, engine: ") + engine + "}}";
    INFO(yaml);
    Context cpu(1);
    auto gpu = Context::gpu(0, 1);
    auto ref = make_layer(yaml), dut = make_layer(yaml);
    Blob x_cpu = gaussian_blob({{2, 7, 3, 3}}), x_gpu, y_cpu, y_gpu;
    x_gpu.copy_from(x_cpu, false, true);
    ref.layer->setup(cpu, {&x_cpu}, {&y_cpu});
    dut.layer->setup(*gpu, {&x_gpu}, {&y_gpu});
    ref.layer->forward(cpu, {&x_cpu}, {&y_cpu});
    dut.layer->forward(*gpu, {&x_gpu}, {&y_gpu});
    gpu->cuda()->synchronize();
    Rng rng(5);
    Blob dy(y_cpu.shape());
    fill_gaussian(dy, rng);
    for (Blob* y : {&y_cpu, &y_gpu}) {
      float* v = y->mutable_cpu_data();
      for (int i = 0; i < y->count(); ++i) v[i] = std::max(v[i], 0.f);
      std::copy(dy.cpu_data(), dy.cpu_data() + dy.count(), y->mutable_cpu_diff());
    }
    ref.layer->backward(cpu, {&y_cpu}, {true}, {&x_cpu});
    dut.layer->backward(*gpu, {&y_gpu}, {true}, {&x_gpu});
    gpu->cuda()->synchronize();
    check_close("bottom diff", 0, x_gpu.cpu_diff(), x_cpu.cpu_diff(), x_cpu.count());
  }
}

TEST_CASE("GPU cuDNN: BatchNorm matches the CPU with batch and global statistics") {
  SKIP_WITHOUT_DEVICE();
  check_gpu_matches_cpu("{type: BatchNorm, batch_norm_param: {moving_average_fraction: 0.9}}", {4, 3, 3, 2});
  check_gpu_matches_cpu("{type: BatchNorm}", {8, 5});
  // A large offset over a small spread: the mean must be subtracted in double, as on the CPU.
  check_gpu_matches_cpu("{type: BatchNorm}", {16, 3, 2, 2}, 1, Phase::TRAIN, nullptr,
                        [](float v) { return 30000.f + v; });
  // Running sums as a few iterations leave them: estimates are blob / factor.
  const ParamInit stored = [](Layer& layer) {
    Rng rng(5);
    fill_gaussian(*layer.blobs()[0], rng);
    fill_uniform(*layer.blobs()[1], rng, 0.5f, 2.f);
    layer.blobs()[2]->set_data(2.5f);
  };
  check_gpu_matches_cpu("{type: BatchNorm, batch_norm_param: {use_global_stats: true, eps: 0.001}}", {3, 4, 2, 2}, 1,
                        Phase::TRAIN, stored);
  check_gpu_matches_cpu("{type: BatchNorm}", {3, 4, 2, 2}, 1, Phase::TEST, stored);
}

// precision: tf32 lets cuDNN's convolutions and cuBLAS's products (InnerProduct) round
// their inputs to TF32 on tensor cores: the results stay within TF32's rounding of the
// FP32 reference. The emulation rounds wherever TF32 is allowed, so there the error
// must also show that it was (on a device cuDNN may still pick an FP32 algorithm).
TEST_CASE("GPU cuDNN: precision tf32 keeps Convolution, Deconvolution and InnerProduct within TF32's rounding") {
  SKIP_WITHOUT_DEVICE();
  const std::function<float(float)> keep = nullptr;
  const double conv_error =
      check_gpu_matches_cpu(conv("Convolution", "num_output: 6, kernel_size: 3, pad: 1, group: 2"), {2, 4, 7, 7}, 1,
                            Phase::TRAIN, nullptr, keep, Precision::tf32);
  const double deconv_error = check_gpu_matches_cpu(conv("Deconvolution", "num_output: 4, kernel_size: 3, stride: 2"),
                                                    {2, 3, 4, 5}, 1, Phase::TRAIN, nullptr, keep, Precision::tf32);
  const double ip_error = check_gpu_matches_cpu(
      "{type: InnerProduct, inner_product_param: {num_output: 7, weight_filler: {type: gaussian, std: 0.5}, "
      "bias_filler: {type: gaussian, std: 0.5}}}",
      {4, 3, 5, 5}, 1, Phase::TRAIN, nullptr, keep, Precision::tf32);
#ifdef CREMA_CUDA_EMULATION
  CHECK(conv_error > 1e-6);
  CHECK(deconv_error > 1e-6);
  CHECK(ip_error > 1e-6);
#else
  MESSAGE("TF32 errors: Convolution " << conv_error << ", Deconvolution " << deconv_error << ", InnerProduct "
                                      << ip_error);
#endif
}

TEST_CASE("precision tf32 is refused on the CPU") {
  Context cpu(1);
  CHECK_THROWS_WITH_AS(cpu.set_precision(Precision::tf32),
                       doctest::Contains("precision: tf32 runs on a GPU's tensor cores (cuDNN, cuBLAS)"), Error);
  CHECK(cpu.precision() == Precision::fp32);
}

TEST_CASE("GPU cuDNN: convolution algorithms are chosen once per shape") {
  SKIP_WITHOUT_DEVICE();
#ifdef CREMA_WITH_CUDA  // the search counter exists only with CUDA; without it no device is reported above
  auto gpu = Context::gpu(0, 1);
  auto t = make_layer(conv("Convolution", "num_output: 4, kernel_size: 3, cudnn_workspace_limit_mb: 0"));
  auto* layer = dynamic_cast<BaseConvolutionLayer*>(t.layer.get());
  REQUIRE(layer != nullptr);
  Blob x({2, 3, 6, 6}), y;
  t.layer->setup(*gpu, {&x}, {&y});
  CHECK(layer->cudnn_algorithm_searches() == 0);
  t.layer->forward(*gpu, {&x}, {&y});
  t.layer->forward(*gpu, {&x}, {&y});
  CHECK(layer->cudnn_algorithm_searches() == 1);
  x.reshape({2, 3, 6, 6});  // same shape again: nothing to choose
  t.layer->reshape({&x}, {&y});
  t.layer->forward(*gpu, {&x}, {&y});
  CHECK(layer->cudnn_algorithm_searches() == 1);
  x.reshape({1, 3, 9, 7});
  t.layer->reshape({&x}, {&y});
  t.layer->forward(*gpu, {&x}, {&y});
  t.layer->backward(*gpu, {&y}, {true}, {&x});
  CHECK(layer->cudnn_algorithm_searches() == 2);
#endif
}

TEST_CASE("GPU cuDNN: engines without a GPU path are refused by name") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, 1);
  Blob x({2, 3, 5, 5}), y;
  auto c = make_layer(conv("Convolution", "num_output: 2, kernel_size: 3, engine: CAFFE"));
  CHECK_THROWS_WITH_AS(c.layer->setup(*gpu, {&x}, {&y}), doctest::Contains("engine: CAFFE"), Error);
  auto bn = make_layer("{type: BatchNorm, batch_norm_param: {engine: CUDNN}}");
  CHECK_THROWS_WITH_AS(bn.layer->setup(*gpu, {&x}, {&y}), doctest::Contains("no cuDNN engine"), Error);
  auto lrn = make_layer("{type: LRN, lrn_param: {norm_region: WITHIN_CHANNEL, engine: CUDNN}}");
  lrn.layer->setup(*gpu, {&x}, {&y});
  CHECK_THROWS_WITH_AS(lrn.layer->forward(*gpu, {&x}, {&y}), doctest::Contains("engine: CUDNN needs"), Error);
}

TEST_CASE("engine and cudnn_workspace_limit_mb are checked where they are written") {
  CHECK_THROWS_WITH_AS(make_layer(conv("Convolution", "num_output: 2, kernel_size: 3, cudnn_workspace_limit_mb: -1")),
                       doctest::Contains("cudnn_workspace_limit_mb must be 0 or more"), Error);
  CHECK_THROWS_WITH_AS(make_layer(conv("Convolution", "num_output: 2, kernel_size: 3, engine: FAST")),
                       doctest::Contains("expected one of: DEFAULT, CAFFE, CUDNN"), Error);
  CHECK_THROWS_WITH_AS(make_layer("{type: Pooling, pooling_param: {kernel_size: 2, engine: cudnn}}"),
                       doctest::Contains("expected one of: DEFAULT, CAFFE, CUDNN"), Error);
  // Every engine name runs the CPU reference on the CPU.
  for (const char* engine : {"DEFAULT", "CAFFE", "CUDNN"}) {
    INFO("engine " << engine);
    Context cpu(1);
    auto t = make_layer(std::string("{type: LRN, lrn_param: {local_size: 3, engine: ") + engine + "}}");
    Blob x({1, 3, 2, 2}), y;
    x.set_data(1.f);
    t.layer->setup(cpu, {&x}, {&y});
    t.layer->forward(cpu, {&x}, {&y});
    // scale = 1 + 1/3 * (sum of squares in the window) for the middle channel: 1 + 3/3 = 2.
    CHECK(y.cpu_data()[4] == doctest::Approx(std::pow(2.f, -0.75f)));
  }
}
