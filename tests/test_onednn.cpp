// The CPU engine table: every layer configuration with a oneDNN engine runs with
// `engine: ONEDNN` (which refuses to fall back) and with `engine: CAFFE` (the plain
// reference) from identical inputs, parameters, top gradients and parameter
// gradients already holding a value (Caffe's layers accumulate into those), and
// every top, bottom gradient and parameter gradient must agree. Then what DEFAULT
// picks, the shapes oneDNN is refused for, primitives built once per shape, and the
// numerical gradient of the reference itself (the layer tests check DEFAULT, which
// is oneDNN).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backend_table.hpp"
#include "engine/error.hpp"
#include "engine/net.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"
#include "layers/activation_layer.hpp"
#include "layers/base_conv_layer.hpp"
#include "layers/lrn_layer.hpp"
#include "layers/onednn/onednn_gemm.hpp"
#include "layers/onednn/onednn_support.hpp"
#include "layers/pooling_layer.hpp"
#include "random_net.hpp"

using namespace crema;
using namespace backend_table;

namespace {

// Values 0 or 1 with a gradient: MAX pooling windows full of ties (as after a ReLU).
Input ties(std::vector<int> shape) { return {std::move(shape), Fill::binary, 0, true}; }

const std::vector<LayerCase>& engine_cases() {
  static const std::vector<LayerCase> table = {
      // Convolution
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 4, kernel_size: 3, engine: ENGINE}}",
       {gauss({2, 3, 7, 7})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 5, kernel_size: 3, pad: 1, stride: 2, engine: ENGINE}}",
       {gauss({2, 3, 8, 8})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 6, kernel_size: 3, group: 2, pad: 1, engine: ENGINE}}",
       {gauss({2, 4, 6, 6})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 3, dilation: 2, pad: 2, engine: ENGINE}}",
       {gauss({2, 3, 9, 9})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 7, kernel_size: 1, bias_term: false, engine: ENGINE}}",
       {gauss({2, 5, 4, 4})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 2, kernel_h: 3, kernel_w: 1, stride_h: 2, stride_w: 1, "
       "pad_h: 1, pad_w: 0, engine: ENGINE}}",
       {gauss({2, 2, 7, 5})}},
      // A kernel overhanging the image by less than a stride (Caffe's truncating size).
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 2, kernel_size: 2, stride: 3, engine: ENGINE}}",
       {gauss({1, 2, 7, 7})}},
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 2, engine: ENGINE}}",
       {gauss({2, 2, 5, 5}), gauss({2, 2, 5, 5})}, 2},
      // LeNet's and AlexNet's first layers.
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 20, kernel_size: 5, engine: ENGINE}}",
       {gauss({4, 1, 28, 28})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 8, kernel_size: 11, stride: 4, engine: ENGINE}}",
       {gauss({2, 3, 35, 35})}},
      // Deconvolution
      {"Deconvolution",
       "{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 3, stride: 2, pad: 1, engine: ENGINE}}",
       {gauss({2, 3, 4, 4})}},
      {"Deconvolution",
       "{type: Deconvolution, convolution_param: {num_output: 4, kernel_size: 2, stride: 2, group: 2, engine: ENGINE}}",
       {gauss({2, 4, 3, 3})}},
      {"Deconvolution",
       "{type: Deconvolution, convolution_param: {num_output: 3, kernel_size: 3, bias_term: false, engine: ENGINE}}",
       {gauss({1, 2, 4, 5}), gauss({1, 2, 4, 5})}, 2},
      // InnerProduct (oneDNN's matmul against OpenBLAS's sgemm)
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 10, engine: ENGINE}}",
       {gauss({8, 3, 4, 4})}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 7, transpose: true, engine: ENGINE}}",
       {gauss({5, 20})}},
      {"InnerProduct",
       "{type: InnerProduct, inner_product_param: {num_output: 6, axis: 2, bias_term: false, engine: ENGINE}}",
       {gauss({2, 3, 9})}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 3, engine: ENGINE}}", {gauss({1, 5})}},
      // Pooling
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 2, stride: 2, engine: ENGINE}}",
       {gauss({2, 3, 8, 8})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, engine: ENGINE}}",
       {gauss({2, 3, 8, 8})}},  // ceil: the last window overhangs the image
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, pad: 1, engine: ENGINE}}",
       {gauss({2, 3, 6, 7})}},
      {"Pooling",
       "{type: Pooling, pooling_param: {pool: MAX, kernel_h: 3, kernel_w: 2, stride_h: 2, stride_w: 1, engine: ENGINE}}",
       {gauss({1, 2, 7, 6})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, engine: ENGINE}}",
       {ties({2, 3, 7, 7})}},  // ties: the first maximum takes the gradient
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, global_pooling: true, engine: ENGINE}}",
       {gauss({2, 3, 5, 4})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, engine: ENGINE}}",
       {gauss({2, 3, 8, 8})}},  // no padding: divided by the pixels in the image
      {"Pooling", "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 1, pad: 1, engine: ENGINE}}",
       {gauss({2, 3, 5, 5})}},  // padding: divided by the whole kernel
      {"Pooling", "{type: Pooling, pooling_param: {pool: AVE, global_pooling: true, engine: ENGINE}}",
       {gauss({2, 3, 5, 4})}},
      {"Pooling",
       "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 2, stride: 2, round_mode: FLOOR, engine: ENGINE}}",
       {gauss({1, 2, 5, 5})}},
      // LRN
      {"LRN", "{type: LRN, lrn_param: {local_size: 5, alpha: 0.0001, beta: 0.75, engine: ENGINE}}",
       {gauss({2, 16, 5, 5})}},  // AlexNet's
      {"LRN", "{type: LRN, lrn_param: {local_size: 3, alpha: 0.5, beta: 0.6, k: 2, engine: ENGINE}}",
       {gauss({2, 7, 4, 3})}},  // channels not a multiple of oneDNN's block
      {"LRN",
       "{type: LRN, lrn_param: {local_size: 3, alpha: 0.3, beta: 0.75, norm_region: WITHIN_CHANNEL, engine: ENGINE}}",
       {gauss({2, 3, 6, 5})}},
      // Activations (oneDNN's eltwise, backward from the output)
      {"ReLU", "{type: ReLU, relu_param: {engine: ENGINE}}", {gauss({2, 3, 4, 5})}},
      {"ReLU", "{type: ReLU, relu_param: {negative_slope: 0.2, engine: ENGINE}}", {gauss({2, 17, 3, 3})}},
      in_place({"ReLU", "{type: ReLU, relu_param: {negative_slope: 0.1, engine: ENGINE}}", {gauss({4, 9})}}),
      {"Sigmoid", "{type: Sigmoid, sigmoid_param: {engine: ENGINE}}", {gauss({2, 3, 4, 5})}},
      in_place({"Sigmoid", "{type: Sigmoid, sigmoid_param: {engine: ENGINE}}", {gauss({3, 70})}}),
      {"TanH", "{type: TanH, tanh_param: {engine: ENGINE}}", {gauss({2, 3, 4, 5})}},
      in_place({"TanH", "{type: TanH, tanh_param: {engine: ENGINE}}", {gauss({3, 70})}}),
      // BatchNorm (the running sums are parameters 0-2 of the comparison)
      {"BatchNorm", "{type: BatchNorm, batch_norm_param: {engine: ENGINE}}", {gauss({4, 3, 5, 5})}},
      in_place({"BatchNorm", "{type: BatchNorm, batch_norm_param: {engine: ENGINE}}", {gauss({4, 3, 5, 5})}}),
      {"BatchNorm", "{type: BatchNorm, batch_norm_param: {use_global_stats: true, eps: 0.001, engine: ENGINE}}",
       {gauss({4, 3, 5, 5})}},
      in_place({"BatchNorm", "{type: BatchNorm, batch_norm_param: {use_global_stats: true, engine: ENGINE}}",
                {gauss({2, 5, 3, 2})}}),
      {"BatchNorm", "{type: BatchNorm, batch_norm_param: {moving_average_fraction: 0.9, engine: ENGINE}}",
       {gauss({6, 4})}},
  };
  return table;
}

}  // namespace

TEST_CASE("oneDNN engines: every case matches the CPU reference, forward and both backward paths") {
  int compared = 0;
  for (const LayerCase& c : engine_cases()) {
    const LayerCase onednn = with_engine(c, "ONEDNN"), reference = with_engine(c, "CAFFE");
    INFO("case " << onednn.name());
    Context a(static_cast<long long>(kSeed)), b(static_cast<long long>(kSeed));
    try {
      const Outcome want = run_case(reference, a, 0.5f);
      const Outcome got = run_case(onednn, b, 0.5f);
      REQUIRE(got.results.size() == want.results.size());
      for (size_t r = 0; r < want.results.size(); ++r) {
        INFO(want.names[r]);
        CHECK(normalised_error(want.results[r], got.results[r]) <= 1e-5);
      }
      ++compared;
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: " << e.what());
    }
  }
  CHECK(compared == static_cast<int>(engine_cases().size()));
}

// Random geometries (backend_table::geometry_cases): DEFAULT, and ONEDNN wherever it
// takes the geometry, against the reference. Where ONEDNN refuses one, DEFAULT must
// still run it (on the reference).
TEST_CASE("oneDNN engines: random convolution, deconvolution and pooling geometries match the CPU reference") {
  int compared = 0, onednn_ran = 0;
  for (const LayerCase& c : geometry_cases(20261206, 240, ", engine: ENGINE", 1e-5f)) {
    INFO("case " << with_engine(c, "CAFFE").name());
    Context r(static_cast<long long>(kSeed));
    Outcome want;
    try {
      want = run_case(with_engine(c, "CAFFE"), r, 0.5f);
    } catch (const std::exception& e) {
      FAIL_CHECK("the reference threw: " << e.what());
      continue;
    }
    for (const char* engine : {"DEFAULT", "ONEDNN"}) {
      INFO("engine " << engine);
      Context ctx(static_cast<long long>(kSeed));
      Outcome got;
      try {
        got = run_case(with_engine(c, engine), ctx, 0.5f);
      } catch (const Error& e) {
        // ONEDNN refuses what oneDNN would compute differently; DEFAULT never may.
        const bool refused =
            std::string(engine) == "ONEDNN" && std::string(e.what()).find("oneDNN cannot") != std::string::npos;
        CHECK_MESSAGE(refused, "threw: " << e.what());
        continue;
      }
      const std::string failure = mismatches(want, got, c.tolerance);
      CHECK_MESSAGE(failure.empty(), failure);
      if (std::string(engine) == "ONEDNN") ++onednn_ran;
    }
    ++compared;
  }
  CHECK(compared == 240);
  MESSAGE("oneDNN took " << onednn_ran << " of " << compared << " random geometries");
  CHECK(onednn_ran > compared / 2);
}

TEST_CASE("oneDNN engines: DEFAULT runs oneDNN on the CPU and the reference where oneDNN would differ") {
  Context ctx(1);
  Blob x({1, 2, 6, 6}), y;
  Rng rng(3);
  test::fill_gaussian(x, rng);

  auto conv = test::make_layer("{type: Convolution, convolution_param: {num_output: 2, kernel_size: 3}}");
  conv.layer->setup(ctx, {&x}, {&y});
  CHECK(dynamic_cast<BaseConvolutionLayer&>(*conv.layer).uses_onednn());
  auto caffe = test::make_layer("{type: Convolution, convolution_param: {num_output: 2, kernel_size: 3, engine: CAFFE}}");
  caffe.layer->setup(ctx, {&x}, {&y});
  CHECK_FALSE(dynamic_cast<BaseConvolutionLayer&>(*caffe.layer).uses_onednn());

  auto max = test::make_layer("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}");
  max.layer->setup(ctx, {&x}, {&y});
  CHECK(dynamic_cast<PoolingLayer&>(*max.layer).uses_onednn());
  // The mask top only the reference writes.
  Blob mask;
  auto masked = test::make_layer("{type: Pooling, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}");
  masked.layer->setup(ctx, {&x}, {&y, &mask});
  CHECK_FALSE(dynamic_cast<PoolingLayer&>(*masked.layer).uses_onednn());

  // AVE, kernel 3, stride 2, pad 1 on 6x6: Caffe's last window ends 2 past the image,
  // 1 past the padding, and Caffe divides it by 6, neither 9 nor the pixels.
  const std::string overhang = "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1";
  auto ave = test::make_layer(overhang + "}}");
  Blob y_default, y_caffe;
  ave.layer->setup(ctx, {&x}, {&y_default});
  CHECK_FALSE(dynamic_cast<PoolingLayer&>(*ave.layer).uses_onednn());
  ave.layer->forward(ctx, {&x}, {&y_default});
  auto ave_caffe = test::make_layer(overhang + ", engine: CAFFE}}");
  ave_caffe.layer->setup(ctx, {&x}, {&y_caffe});
  ave_caffe.layer->forward(ctx, {&x}, {&y_caffe});
  CHECK(normalised_error(values(y_caffe.cpu_data(), y_caffe.count()), values(y_default.cpu_data(), y_default.count())) == 0.0);
  // ONEDNN is refused there, naming the layer and the way out.
  auto forced = test::make_layer(overhang + ", engine: ONEDNN}}");
  CHECK_THROWS_WITH_AS(forced.layer->setup(ctx, {&x}, {&y}), doctest::Contains("oneDNN cannot compute Caffe's pooling"),
                       ConfigError);
}

TEST_CASE("oneDNN engines: convolution primitives are built once per shape") {
  Context ctx(1);
  auto t = test::make_layer("{type: Convolution, convolution_param: {num_output: 2, kernel_size: 3}}");
  auto& conv = dynamic_cast<BaseConvolutionLayer&>(*t.layer);
  Blob x({2, 1, 5, 5}), y;
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  t.layer->reshape({&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(conv.onednn_builds() == 1);
  x.reshape({3, 1, 5, 5});
  t.layer->reshape({&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  CHECK(conv.onednn_builds() == 2);
  CHECK(y.shape() == std::vector<int>{3, 2, 3, 3});
}

TEST_CASE("oneDNN engines: the reference engine's own numerical gradients") {
  for (const char* yaml : {
           "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 3, pad: 1, stride: 2, group: 1, "
           "engine: CAFFE, weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
           "{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 3, stride: 2, engine: CAFFE, "
           "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
       }) {
    CAPTURE(yaml);
    test::check_gradients(yaml, {{2, 2, 5, 5}, 1.f, 5});
  }
}

// Forward and backward run twice on new values in the same blobs, the second time
// without the data gradient and then without the weight gradient: oneDNN's copies
// of forward's input and of the top gradient, shared between primitives within a
// pass, must never carry over from an earlier pass. 16 channels: blocked layouts,
// so the copies exist.
TEST_CASE("oneDNN engines: a conv's staged copies never outlive their pass") {
  for (const char* type : {"Convolution", "Deconvolution"}) {
    CAPTURE(type);
    const std::string yaml = std::string("{type: ") + type +
                             ", convolution_param: {num_output: 16, kernel_size: 3, pad: 1, engine: ENGINE, "
                             "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}";
    std::vector<std::vector<float>> results[2];
    for (int e = 0; e < 2; ++e) {
      Context ctx(7);
      auto t = test::make_layer(with_engine(yaml, e == 0 ? "CAFFE" : "ONEDNN"));
      Blob x({2, 16, 6, 6}), y;
      t.layer->setup(ctx, {&x}, {&y});
      Rng rng(11);
      for (int pass = 0; pass < 3; ++pass) {
        test::fill_gaussian(x, rng);
        t.layer->forward(ctx, {&x}, {&y});
        float* dy = y.mutable_cpu_diff();
        for (int i = 0; i < y.count(); ++i) dy[i] = rng.gaussian(0.f, 1.f);
        for (auto& p : t.layer->blobs()) p->set_diff(0.f);
        x.set_diff(0.f);
        t.layer->set_param_propagate_down(0, pass != 2);
        t.layer->backward(ctx, {&y}, {pass != 1}, {&x});
        for (const Blob* b : std::vector<const Blob*>{&x, t.layer->blobs()[0].get(), t.layer->blobs()[1].get()})
          results[e].push_back(values(b->cpu_diff(), b->count()));
      }
    }
    REQUIRE(results[0].size() == results[1].size());
    for (size_t r = 0; r < results[0].size(); ++r) {
      INFO("pass " << r / 3 << ", gradient " << r % 3);
      CHECK(normalised_error(results[0][r], results[1][r]) <= 1e-5);
    }
  }
}

// precision: bf16 — Convolution, Deconvolution and InnerProduct round their inputs to
// bfloat16 (8 significant bits) and accumulate in fp32, so they agree with the fp32
// reference to about 2^-8 of the values' scale, and differ from it: the rounding is
// really there.
TEST_CASE("oneDNN engines: precision bf16 matches the fp32 reference to bf16's rounding") {
  if (const std::string why = onednn::bf16_unsupported(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  const std::vector<LayerCase> cases = {
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 16, kernel_size: 3, pad: 1, engine: ENGINE}}",
       {gauss({2, 16, 6, 6})}},
      {"Convolution",
       "{type: Convolution, convolution_param: {num_output: 6, kernel_size: 3, group: 2, stride: 2, engine: ENGINE}}",
       {gauss({2, 4, 7, 7})}},
      {"Deconvolution",
       "{type: Deconvolution, convolution_param: {num_output: 4, kernel_size: 2, stride: 2, engine: ENGINE}}",
       {gauss({2, 3, 4, 4})}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 10, engine: ENGINE}}",
       {gauss({8, 3, 4, 4})}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 7, transpose: true, engine: ENGINE}}",
       {gauss({5, 20})}},
      {"InnerProduct",
       "{type: InnerProduct, inner_product_param: {num_output: 6, axis: 2, bias_term: false, engine: ENGINE}}",
       {gauss({2, 3, 9})}},
  };
  for (const LayerCase& c : cases) {
    const LayerCase bf16 = with_engine(c, "DEFAULT"), reference = with_engine(c, "CAFFE");
    INFO("case " << bf16.name());
    Context a(static_cast<long long>(kSeed)), b(static_cast<long long>(kSeed));
    b.set_precision(Precision::bf16);
    const Outcome want = run_case(reference, a, 0.5f);
    const Outcome got = run_case(bf16, b, 0.5f);
    REQUIRE(got.results.size() == want.results.size());
    double largest = 0;
    for (size_t r = 0; r < want.results.size(); ++r) {
      INFO(want.names[r]);
      const double e = normalised_error(want.results[r], got.results[r]);
      CHECK(e <= 1e-2);
      largest = std::max(largest, e);
    }
    CHECK(largest > 1e-5);
  }
}

// A bf16 InnerProduct rounds its weights once per change of their values, not in each
// product: the forward and the input gradient share one rounding, a second forward on the
// same weights makes none, and a change of the weights (the solver's update, a weights
// file) is seen by the next product, be it a forward or a backward.
TEST_CASE("oneDNN engines: bf16 InnerProduct rounds its weights once per change, and every product sees the change") {
  if (const std::string why = onednn::bf16_unsupported(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  Context reference_ctx(1), bf16_ctx(1);
  bf16_ctx.set_precision(Precision::bf16);
  auto reference = test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 8, engine: CAFFE}}");
  auto rounded = test::make_layer("{type: InnerProduct, inner_product_param: {num_output: 8, engine: DEFAULT}}");
  Rng rng(kSeed);
  Blob x({4, 50}), x2({4, 50}), want, got;
  test::fill_gaussian(x, rng);
  reference.layer->setup(reference_ctx, {&x}, {&want});
  rounded.layer->setup(bf16_ctx, {&x2}, {&got});
  // Both layers get these weights, written through mutable_cpu_data as an update writes them.
  const auto set_weights = [&](float scale) {
    Rng w_rng(kSeed + 1);
    Blob& w = *reference.layer->blobs()[0];
    test::fill_gaussian(w, w_rng, scale);
    rounded.layer->blobs()[0]->copy_from(w);
    for (auto* layer : {reference.layer.get(), rounded.layer.get()}) layer->blobs()[1]->set_data(0.25f * scale);
  };
  const auto forward = [&] {
    x2.copy_from(x);
    reference.layer->forward(reference_ctx, {&x}, {&want});
    rounded.layer->forward(bf16_ctx, {&x2}, {&got});
    return normalised_error(values(want.cpu_data(), want.count()), values(got.cpu_data(), got.count()));
  };
  const auto backward = [&] {
    Rng dy_rng(kSeed + 2);
    float* dy = want.mutable_cpu_diff();  // (4, 8), equal in both
    for (int i = 0; i < want.count(); ++i) dy[i] = dy_rng.gaussian(0.f, 1.f);
    got.copy_from(want, /*copy_diff=*/true);
    reference.layer->backward(reference_ctx, {&want}, {true}, {&x});
    rounded.layer->backward(bf16_ctx, {&got}, {true}, {&x2});
    const std::vector<float> dx = values(x.cpu_diff(), x.count());
    CHECK(*std::max_element(dx.begin(), dx.end()) > 0.1f);  // a gradient to compare
    return normalised_error(dx, values(x2.cpu_diff(), x2.count()));
  };
  set_weights(1.f);
  const long before = onednn::RoundedCopy::roundings();
  CHECK(forward() <= 1e-2);
  CHECK(backward() <= 1e-2);
  CHECK(forward() <= 1e-2);
  CHECK(onednn::RoundedCopy::roundings() - before == 1);
  // New weights, then straight to a backward: its product rounds them.
  set_weights(-3.f);
  CHECK(backward() <= 1e-2);
  CHECK(onednn::RoundedCopy::roundings() - before == 2);
  CHECK(forward() <= 1e-2);
  CHECK(onednn::RoundedCopy::roundings() - before == 2);
  // And a forward after a change.
  set_weights(0.5f);
  CHECK(forward() <= 1e-2);
  CHECK(onednn::RoundedCopy::roundings() - before == 3);
}

TEST_CASE("oneDNN engines: precision bf16 is refused with the reference engine, or on a CPU without bf16") {
  Context ctx(1);
  ctx.set_precision(Precision::bf16);
  Blob x({1, 2, 6, 6}), y;
  if (onednn::bf16_unsupported().empty()) {
    auto caffe = test::make_layer("{name: c1, type: Convolution, convolution_param: {num_output: 2, kernel_size: 3, engine: CAFFE}}");
    CHECK_THROWS_WITH_AS(caffe.layer->setup(ctx, {&x}, {&y}),
                         doctest::Contains("precision: bf16 runs on oneDNN, but this layer's engine asks for the fp32 reference"),
                         ConfigError);
  } else {
    auto conv = test::make_layer("{name: c1, type: Convolution, convolution_param: {num_output: 2, kernel_size: 3}}");
    CHECK_THROWS_WITH_AS(conv.layer->setup(ctx, {&x}, {&y}), doctest::Contains("neither AVX512-BF16 nor AMX"),
                         ConfigError);
  }
}

// Layouts between layers: in a chain of oneDNN layers (activations too, in place or
// not), and through BatchNorm, Scale, Eltwise SUM and Split, whose own loops run on
// channel-blocked layouts, each blob stays in the blocked layout its producer left
// it in (onednn_common.hpp), read plain only where a layer without a layout of its
// own (InnerProduct, the loss) or the test reads it. The whole net, run with the oneDNN engines (DEFAULT) and with the
// reference (CAFFE) from the same parameters and inputs over two passes, must agree
// in every blob's value and gradient and every parameter gradient; and the blocked
// layouts must really have been used, else this would test nothing new.
namespace {

const char* const kLayoutNet = R"(
name: layouts
layer:
- {name: data, type: Input, top: data, input_param: {shape: {dim: [3, 3, 21, 21]}}}
- {name: label, type: Input, top: label, input_param: {shape: {dim: [3]}}}
- {name: conv1, type: Convolution, bottom: data, top: conv1,
   convolution_param: {num_output: 32, kernel_size: 5, stride: 2, engine: ENGINE,
                       weight_filler: {type: gaussian, std: 0.2}, bias_filler: {type: gaussian, std: 0.1}}}
- {name: relu1, type: ReLU, bottom: conv1, top: conv1}
- {name: norm1, type: LRN, bottom: conv1, top: norm1, lrn_param: {local_size: 5, alpha: 0.1, beta: 0.75, engine: ENGINE}}
- {name: pool1, type: Pooling, bottom: norm1, top: pool1, pooling_param: {pool: MAX, kernel_size: 3, stride: 2, engine: ENGINE}}
- {name: conv2, type: Convolution, bottom: pool1, top: conv2,
   convolution_param: {num_output: 32, kernel_size: 3, pad: 1, group: 2, engine: ENGINE,
                       weight_filler: {type: gaussian, std: 0.2}, bias_filler: {type: gaussian, std: 0.1}}}
- {name: relu2, type: ReLU, bottom: conv2, top: conv2, relu_param: {negative_slope: 0.1}}
- {name: conv3, type: Convolution, bottom: conv2, top: conv3,
   convolution_param: {num_output: 16, kernel_size: 3, pad: 1, engine: ENGINE,
                       weight_filler: {type: gaussian, std: 0.2}, bias_filler: {type: gaussian, std: 0.1}}}
- {name: bn3, type: BatchNorm, bottom: conv3, top: conv3}
- {name: scale3, type: Scale, bottom: conv3, top: conv3,
   scale_param: {bias_term: true, filler: {type: uniform, min: 0.5, max: 1.5}, bias_filler: {type: gaussian, std: 0.1}}}
- {name: relu3, type: ReLU, bottom: conv3, top: conv3}
- {name: side, type: Convolution, bottom: pool1, top: side,
   convolution_param: {num_output: 16, kernel_size: 1, engine: ENGINE, weight_filler: {type: gaussian, std: 0.2}}}
- {name: side_bn, type: BatchNorm, bottom: side, top: side_norm}
- {name: side_scale, type: Scale, bottom: side_norm, top: side_scaled, scale_param: {filler: {type: uniform, min: 0.5, max: 1.5}}}
- {name: conv3b, type: Convolution, bottom: conv3, top: conv3b,
   convolution_param: {num_output: 16, kernel_size: 1, engine: ENGINE, weight_filler: {type: gaussian, std: 0.2}}}
- {name: sum, type: Eltwise, bottom: [conv3, conv3b, side_scaled], top: sum, eltwise_param: {coeff: [1, 0.5, -0.5]}}
- {name: up, type: Deconvolution, bottom: sum, top: up,
   convolution_param: {num_output: 16, kernel_size: 2, stride: 2, bias_term: false, engine: ENGINE,
                       weight_filler: {type: gaussian, std: 0.2}}}
- {name: relu4, type: ReLU, bottom: up, top: up}
- {name: pool2, type: Pooling, bottom: up, top: pool2, pooling_param: {pool: AVE, kernel_size: 2, stride: 2, engine: ENGINE}}
- {name: squash, type: Sigmoid, bottom: pool2, top: squashed, sigmoid_param: {engine: ENGINE}}
- {name: conv4, type: Convolution, bottom: squashed, top: conv4,
   convolution_param: {num_output: 16, kernel_size: 3, pad: 1, engine: ENGINE, weight_filler: {type: gaussian, std: 0.2}}}
- {name: tanh4, type: TanH, bottom: conv4, top: conv4, tanh_param: {engine: ENGINE}}
- {name: regroup, type: Reshape, bottom: conv4, top: regrouped, reshape_param: {shape: {dim: [0, 32, 2, 4]}}}
- {name: bn5, type: BatchNorm, bottom: regrouped, top: normed}
- {name: ip, type: InnerProduct, bottom: normed, top: ip,
   inner_product_param: {num_output: 5, weight_filler: {type: gaussian, std: 0.1}}}
- {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}
)";

random_net::BuiltNet layout_net(const std::string& engine, Phase phase) {
  return {kLayoutNet, engine, phase, std::make_unique<Context>(5)};
}

}  // namespace

TEST_CASE("oneDNN engines: a net of oneDNN layers passes blocked layouts and matches the reference") {
  random_net::BuiltNet onednn = layout_net("DEFAULT", Phase::TRAIN), reference = layout_net("CAFFE", Phase::TRAIN);
  // The same parameters in both (the fillers draw alike, but this does not rely on it).
  random_net::copy_params(*onednn.net, *reference.net);

  for (uint64_t pass : {1u, 2u}) {
    CAPTURE(pass);
    random_net::train_pass({&onednn, &reference}, pass);
    // Blocked in the oneDNN net, before anything below reads them plain: forward
    // through convolutions, ReLU in place, LRN and pooling, and gradients back.
    // (conv2, grouped, is left out: its layout is oneDNN's choice; a Deconvolution with a
    // bias adds it plain. conv1 makes 32 channels, as on a count that is no multiple of 16
    // LRN leaves oneDNN's reference code for crema's kernels.)
    for (const std::string name :
         {"conv1", "norm1", "pool1", "conv3", "side", "side_norm", "side_scaled", "sum", "up", "pool2", "squashed", "conv4"}) {
      INFO(name);
      CHECK(onednn.net->blob(name)->data_memory()->layout() != nullptr);
      CHECK(reference.net->blob(name)->data_memory()->layout() == nullptr);
    }
    // (pool1's comes plain from the Split: one of its two tops, conv2's input, is plain.)
    for (const std::string name :
         {"conv1", "norm1", "conv3", "side", "side_norm", "side_scaled", "sum", "up", "pool2", "squashed", "conv4"}) {
      INFO(name << " gradient");
      CHECK(onednn.net->blob(name)->diff_memory()->layout() != nullptr);
    }
    // Every value and gradient a user could read, plain, as the reference has them.
    random_net::check_agree(*reference.net, *onednn.net, {1e-5, 1e-5, 1e-4});
  }

  // TEST nets (BatchNorm on its running statistics, which two TRAIN passes filled),
  // one reusing activation memory between blobs: a blob's buffer then holds other
  // blobs' layouts in turn.
  random_net::BuiltNet shared = layout_net("DEFAULT", Phase::TEST), reference_test = layout_net("CAFFE", Phase::TEST);
  for (random_net::BuiltNet* n : {&shared, &reference_test}) random_net::copy_params(*onednn.net, *n->net);
  REQUIRE(shared.net->reuse_activation_memory().buffers >= 2);
  for (uint64_t pass : {3u, 4u}) {
    CAPTURE(pass);
    random_net::fill_inputs(*shared.net, pass);
    random_net::fill_inputs(*reference_test.net, pass);
    shared.net->forward(*shared.ctx);
    reference_test.net->forward(*reference_test.ctx);
    const Blob& want = *reference_test.net->blob("ip");
    const Blob& got = *shared.net->blob("ip");
    CHECK(normalised_error(values(want.cpu_data(), want.count()), values(got.cpu_data(), got.count())) <= 1e-5);
  }
}

// A global pool behind a convolution takes its input blocked, and its 1×1 gradient with it: left
// to choose the gradients' layouts, oneDNN took one only its reference code runs (100× slower);
// they are now the forward's. Values and gradients as the reference's, for AVE and MAX.
TEST_CASE("oneDNN engines: global pooling of a blocked convolution output matches the reference") {
  for (const std::string pool : {"AVE", "MAX"}) {
    CAPTURE(pool);
    const std::string net = R"(
name: global
layer:
- {name: data, type: Input, top: data, input_param: {shape: {dim: [3, 3, 12, 12]}}}
- {name: label, type: Input, top: label, input_param: {shape: {dim: [3]}}}
- {name: conv1, type: Convolution, bottom: data, top: conv1,
   convolution_param: {num_output: 32, kernel_size: 3, engine: ENGINE,
                       weight_filler: {type: gaussian, std: 0.2}, bias_filler: {type: gaussian, std: 0.1}}}
- {name: gap, type: Pooling, bottom: conv1, top: gap, pooling_param: {pool: )" +
                            pool + R"(, global_pooling: true, engine: ENGINE}}
- {name: ip, type: InnerProduct, bottom: gap, top: ip,
   inner_product_param: {num_output: 5, weight_filler: {type: gaussian, std: 0.1}}}
- {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}
)";
    random_net::BuiltNet onednn{net, "DEFAULT", Phase::TRAIN, std::make_unique<Context>(5)};
    random_net::BuiltNet reference{net, "CAFFE", Phase::TRAIN, std::make_unique<Context>(5)};
    random_net::copy_params(*onednn.net, *reference.net);
    random_net::train_pass({&onednn, &reference}, 1);
    const onednn::Pooling* gap = dynamic_cast<PoolingLayer&>(*onednn.net->layer_by_name("gap")).onednn();
    REQUIRE(gap != nullptr);
    // Where oneDNN has fast code for the forward, the backward is not its reference code.
    const auto [forward, backward] = gap->implementations();
    CAPTURE(forward);
    CAPTURE(backward);
    if (!forward.starts_with("ref")) CHECK_FALSE(backward.starts_with("ref"));
    CHECK(onednn.net->blob("conv1")->data_memory()->layout() != nullptr);
    CHECK(onednn.net->blob("conv1")->diff_memory()->layout() != nullptr);
    random_net::check_agree(*reference.net, *onednn.net, {1e-5, 1e-5, 1e-4});
  }
}

// oneDNN's LRN runs its reference code on channel counts that are no multiple of 16 (5 to 11
// times slower than crema's kernels): DEFAULT then takes crema's, ONEDNN keeps oneDNN's.
TEST_CASE("oneDNN engines: LRN by default leaves oneDNN's reference code for crema's kernels") {
  for (const int channels : {17, 32}) {
    CAPTURE(channels);
    Blob x({2, channels, 6, 6}), y;
    Rng rng(3);
    test::fill_gaussian(x, rng);
    Context ctx(1);
    auto forced = test::make_layer("{type: LRN, lrn_param: {local_size: 3, engine: ONEDNN}}");
    forced.layer->setup(ctx, {&x}, {&y});
    auto& lrn = dynamic_cast<LRNLayer&>(*forced.layer);
    REQUIRE(lrn.uses_onednn());
    const auto [forward, backward] = lrn.onednn()->implementations();
    const bool reference = onednn::is_reference(forward) || onednn::is_reference(backward);
    CAPTURE(forward);
    CAPTURE(backward);
    auto chosen = test::make_layer("{type: LRN, lrn_param: {local_size: 3}}");
    chosen.layer->setup(ctx, {&x}, {&y});
    CHECK(dynamic_cast<LRNLayer&>(*chosen.layer).uses_onednn() == !reference);
    if (channels == 17) CHECK(reference);  // else this would test nothing here
  }
}

// Random nets (tests/random_net.hpp) with the oneDNN engines and with the reference,
// from the same parameters and inputs: two TRAIN passes, then a TEST net sharing
// activation memory.
TEST_CASE("oneDNN engines: random nets of oneDNN and plain layers match the reference in every blob") {
  const int blocked = random_net::check_against_reference([] { return std::make_unique<Context>(5); }, "ONEDNN",
                                                          {1e-4, 1e-4, 1e-4}, 30);
  MESSAGE(blocked << " blobs held in oneDNN's layouts over the random nets' passes");
  CHECK(blocked > 30);
}

// The same random nets under precision: bf16 (convolutions and inner products on
// bfloat16 inputs, their tops and everything else fp32) against the fp32 reference,
// within bf16's rounding compounded over a net's depth: values within 0.05 (2,000 nets
// stayed under 0.03), gradients within 0.6 by normalised and by relative L2 error (1,000
// nets: under 0.41 and 0.31), as a MAX window's or a ReLU's choice may change with the
// rounding and BatchNorm magnifies what differs. A gradient lost is 1 off, one of the
// wrong sign 2, a bf16 buffer read as fp32 or a layout lost far more.
TEST_CASE("oneDNN engines: random nets under precision bf16 match the fp32 reference to bf16's rounding") {
  if (const std::string why = onednn::bf16_unsupported(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  random_net::check_against_reference(
      [] {
        auto bf16 = std::make_unique<Context>(5);
        bf16->set_precision(Precision::bf16);
        return bf16;
      },
      "DEFAULT", {0.05, 0.6, 0.6}, 30);
}

TEST_CASE("oneDNN engines: what activations run by DEFAULT, and ONEDNN refused where it would differ") {
  Context ctx(1);
  Blob x({2, 3, 4, 4}), y;
  auto uses_onednn = [&](const std::string& yaml) {
    auto t = test::make_layer(yaml);
    t.layer->setup(ctx, {&x}, {&y});
    return dynamic_cast<ActivationLayer&>(*t.layer).uses_onednn();
  };
  CHECK(uses_onednn("{type: ReLU}"));
  CHECK_FALSE(uses_onednn("{type: ReLU, relu_param: {engine: CAFFE}}"));
  CHECK(uses_onednn("{type: Sigmoid}"));
  CHECK_FALSE(uses_onednn("{type: Sigmoid, sigmoid_param: {engine: CAFFE}}"));
  CHECK(uses_onednn("{type: TanH}"));
  CHECK_FALSE(uses_onednn("{type: TanH, tanh_param: {engine: CUDNN}}"));
  // The gradient is taken from the output, whose sign a negative slope flips.
  CHECK_FALSE(uses_onednn("{type: ReLU, relu_param: {negative_slope: -0.5}}"));
  CHECK_THROWS_WITH_AS(uses_onednn("{type: ReLU, relu_param: {negative_slope: -0.5, engine: ONEDNN}}"),
                       doctest::Contains("relu_param.engine: DEFAULT or CAFFE"), ConfigError);
  CHECK_THROWS_WITH_AS(test::make_layer("{type: TanH, tanh_param: {engine: ONEDNN, slope: 2}}"),
                       doctest::Contains("slope"), ConfigError);
}
