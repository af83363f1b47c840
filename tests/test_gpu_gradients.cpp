// Numerical gradient checks on a CUDA device (issue 5): the GPU table compares each
// layer's GPU backward with the CPU's, and this checks the GPU backward against
// central differences of the GPU forward itself, so a kernel whose forward and
// backward are wrong in the same way as the CPU's (or whose forward alone differs)
// is still caught. The same cases run on the CPU first, everywhere, so the list
// stays valid on machines without a device.
#include <memory>
#include <string>
#include <vector>

#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"

using namespace crema;

namespace {

struct GradCase {
  std::string yaml = {};
  std::vector<int> shape = {};  // bottom 0, Gaussian
  float stddev = 1.f;
  float kink_range = -1.f;  // around 0, for piecewise layers
  bool check_params = true;
  // A second bottom: none, labels in [0, classes) or the given values (neither
  // checked), or Gaussian.
  enum class Second { none, labels, values, gaussian } second = Second::none;
  std::vector<int> second_shape = {};
  int classes = 0;
  std::vector<float> values = {};
  int tops = 1;
};

const std::vector<GradCase>& grad_cases() {
  using S = GradCase::Second;
  static const std::vector<GradCase> table = {
      {.yaml = "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 3, pad: 1, stride: 2, "
               "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
       .shape = {2, 2, 5, 5}},
      {.yaml = "{type: Convolution, convolution_param: {num_output: 4, kernel_size: 3, group: 2, dilation: 2, pad: 2, "
               "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
       .shape = {1, 2, 6, 6}},
      {.yaml = "{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 3, stride: 2, "
               "weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
       .shape = {2, 2, 3, 3}},
      {.yaml = "{type: InnerProduct, inner_product_param: {num_output: 4, weight_filler: {type: gaussian}, "
               "bias_filler: {type: gaussian}}}",
       .shape = {2, 3, 4}},
      // Widely spread values: no two in a window within the difference step of each other.
      {.yaml = "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2}}", .shape = {2, 2, 7, 7},
       .stddev = 10.f},
      {.yaml = "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1}}", .shape = {2, 2, 6, 6}},
      {.yaml = "{type: LRN, lrn_param: {local_size: 3, alpha: 0.5, beta: 0.75}}", .shape = {2, 5, 3, 3}},
      {.yaml = "{type: LRN, lrn_param: {local_size: 3, alpha: 0.5, beta: 0.75, norm_region: WITHIN_CHANNEL}}",
       .shape = {2, 2, 4, 4}},
      {.yaml = "{type: BatchNorm}", .shape = {3, 2, 2, 3}, .check_params = false},
      {.yaml = "{type: ReLU, relu_param: {negative_slope: 0.1}}", .shape = {2, 3, 4}, .kink_range = 0.02f},
      {.yaml = "{type: Sigmoid}", .shape = {2, 3, 4}, .stddev = 2.f},
      {.yaml = "{type: TanH}", .shape = {2, 3, 4}},
      {.yaml = "{type: ELU, elu_param: {alpha: 0.5}}", .shape = {2, 3, 4}, .kink_range = 0.02f},
      {.yaml = "{type: Softmax}", .shape = {2, 5, 3}},
      {.yaml = "{type: MVN}", .shape = {2, 3, 4, 2}},
      {.yaml = "{type: PReLU}", .shape = {2, 3, 4}, .kink_range = 0.02f},
      {.yaml = "{type: Scale, scale_param: {bias_term: true, filler: {type: gaussian}, bias_filler: {type: gaussian}}}",
       .shape = {2, 3, 4}},
      {.yaml = "{type: Power, power_param: {power: 2, scale: 0.5, shift: 1}}", .shape = {2, 3, 4}},
      {.yaml = "{type: Reduction, reduction_param: {operation: SUMSQ, axis: 1}}", .shape = {2, 3, 4}},
      {.yaml = "{type: Tile, tile_param: {axis: 1, tiles: 3}}", .shape = {2, 2, 3}},
      {.yaml = "{type: Eltwise, eltwise_param: {operation: PROD}}", .shape = {2, 3, 4}, .second = S::gaussian,
       .second_shape = {2, 3, 4}},
      {.yaml = "{type: SoftmaxWithLoss}", .shape = {4, 5}, .second = S::labels, .second_shape = {4}, .classes = 5},
      {.yaml = "{type: SigmoidCrossEntropyLoss}", .shape = {3, 4}, .second = S::labels, .second_shape = {3, 4},
       .classes = 2},
      {.yaml = "{type: EuclideanLoss}", .shape = {3, 4}, .second = S::gaussian, .second_shape = {3, 4}},
      // cont 0 at the first step drops the state carried from the previous forward, so
      // every forward of the check computes the same function; stream 1 restarts at t 2.
      {.yaml = "{type: LSTM, recurrent_param: {num_output: 3, weight_filler: {type: uniform, min: -0.5, max: 0.5}, "
               "bias_filler: {type: uniform, min: -0.3, max: 0.3}}}",
       .shape = {3, 2, 4}, .second = S::values, .second_shape = {3, 2}, .values = {0, 0, 1, 1, 1, 0}},
      {.yaml = "{type: RNN, recurrent_param: {num_output: 3, weight_filler: {type: uniform, min: -0.5, max: 0.5}, "
               "bias_filler: {type: uniform, min: -0.3, max: 0.3}}}",
       .shape = {3, 2, 4}, .second = S::values, .second_shape = {3, 2}, .values = {0, 0, 1, 1, 1, 0}},
  };
  return table;
}

// Runs every case's gradient check in `ctx` (null: the CPU).
void check_all(Context* ctx) {
  for (const GradCase& c : grad_cases()) {
    CAPTURE(c.yaml);
    auto t = test::make_layer(c.yaml);
    Blob x = test::gaussian_blob({c.shape, c.stddev}), second;
    BlobVec bottom = {&x};
    if (c.second != GradCase::Second::none) {
      second.reshape(c.second_shape);
      Rng rng(5);
      if (c.second == GradCase::Second::labels)
        for (int i = 0; i < second.count(); ++i)
          second.mutable_cpu_data()[i] = static_cast<float>(rng.below(static_cast<uint32_t>(c.classes)));
      else if (c.second == GradCase::Second::values)
        test::set_values(second, c.values);
      else
        test::fill_gaussian(second, rng);
      bottom.push_back(&second);
    }
    std::vector<std::unique_ptr<Blob>> tops;
    BlobVec top;
    for (int i = 0; i < c.tops; ++i) top.push_back(tops.emplace_back(std::make_unique<Blob>()).get());
    test::GradCheck opt;
    opt.kink_range = c.kink_range;
    opt.check_params = c.check_params;
    if (c.second == GradCase::Second::labels || c.second == GradCase::Second::values) opt.bottoms = {0};
    if (c.yaml.find("BatchNorm") != std::string::npos) opt.step = 1e-3f;
    opt.ctx = ctx;
    test::check_gradients(*t.layer, bottom, top, opt);
  }
}

}  // namespace

TEST_CASE("GPU gradients: the cases check out on the CPU") { check_all(nullptr); }

TEST_CASE("GPU gradients: every case's GPU backward matches central differences of its GPU forward") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, 1701);
  check_all(gpu.get());
}
