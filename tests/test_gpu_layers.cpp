// The backend table (style.md, practice 8): one case per layer configuration, run
// forward and backward on the CPU reference and on a CUDA device from identical
// inputs, identical parameters and identical top gradients, and compared by
// normalised error with NaN/Inf parity. Every registered layer type must have a case
// (or a stated reason why it cannot be compared), and every layer built from a case
// must have a GPU path in a CUDA build (checked without a device too), so a new layer
// cannot skip its GPU path unnoticed.
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend_table.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"
#include "random_net.hpp"

using namespace crema;
using namespace backend_table;

namespace {

const std::vector<LayerCase>& cases() {
  const std::vector<int> nchw = {2, 3, 4, 5};
  static const std::vector<LayerCase> table = {
      {"AbsVal", "{type: AbsVal}", {gauss(nchw)}},
      in_place({"AbsVal", "{type: AbsVal}", {gauss(nchw)}}),
      {"Accuracy", "{type: Accuracy, accuracy_param: {top_k: 2}}", {fixed({6, 5}), labels({6}, 5)}, 2,
       Phase::TEST, 1e-5f, false, false},
      {"ArgMax", "{type: ArgMax, argmax_param: {top_k: 2, out_max_val: true}}", {fixed({3, 7})}, 1, Phase::TRAIN,
       1e-5f, false, false},
      {"ArgMax", "{type: ArgMax}", {fixed({3, 2, 4})}, 1, Phase::TRAIN, 1e-5f, false, false},
      {"ArgMax", "{type: ArgMax, argmax_param: {axis: 1, top_k: 3}}", {fixed({2, 5, 3})}, 1, Phase::TRAIN, 1e-5f,
       false, false},
      {"ArgMax", "{type: ArgMax, argmax_param: {axis: -1, top_k: 2, out_max_val: true}}", {fixed({2, 3, 6})}, 1,
       Phase::TRAIN, 1e-5f, false, false},
      {"BatchNorm", "{type: BatchNorm}", {gauss({4, 3, 2, 2})}, 1, Phase::TRAIN, 1e-3f},
      {"BatchNorm", "{type: BatchNorm}", {gauss({4, 3, 2, 2})}, 1, Phase::TEST, 1e-3f},
      {"BatchReindex", "{type: BatchReindex}", {gauss({4, 2, 3}), labels({5}, 4)}},
      {"BatchReindex", "{type: BatchReindex}", {gauss({3, 70}), labels({9}, 3)}},
      {"Bias", "{type: Bias, bias_param: {axis: 1, num_axes: 1}}", {gauss({2, 3, 4})}},
      {"Bias", "{type: Bias, bias_param: {axis: 1}}", {gauss({2, 3, 4}), gauss({3})}},
      {"BNLL", "{type: BNLL}", {gauss(nchw)}},
      in_place({"BNLL", "{type: BNLL}", {gauss(nchw)}}),
      {"Clip", "{type: Clip, clip_param: {min: -0.5, max: 0.5}}", {gauss(nchw)}},
      in_place({"Clip", "{type: Clip, clip_param: {min: -0.5, max: 0.5}}", {gauss(nchw)}}),
      {"Concat", "{type: Concat, concat_param: {axis: 1}}", {gauss({2, 3, 2}), gauss({2, 4, 2})}},
      {"ContrastiveLoss", "{type: ContrastiveLoss, contrastive_loss_param: {margin: 6}}",
       {gauss({4, 3}), gauss({4, 3}), binary({4})}},
      {"ContrastiveLoss", "{type: ContrastiveLoss, contrastive_loss_param: {margin: 6, legacy_version: true}}",
       {gauss({4, 3}), gauss({4, 3}), binary({4})}},
      {"ContrastiveLoss", "{type: ContrastiveLoss, contrastive_loss_param: {margin: 20}}",
       {gauss({300, 2, 3}), gauss({300, 2, 3}), binary({300, 1})}},
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 3, pad: 1, stride: 2}}",
       {gauss({2, 2, 5, 5})}, 1, Phase::TRAIN, 1e-3f},
      {"Crop", "{type: Crop, crop_param: {axis: 1, offset: [1, 1, 0]}}", {gauss({2, 3, 4, 3}), fixed({2, 2, 2, 3})}},
      {"Crop", "{type: Crop, crop_param: {offset: [1]}}", {gauss({2, 3, 5, 4}), fixed({1, 1, 3, 2})}},
      {"Crop", "{type: Crop, crop_param: {axis: 0, offset: [1, 0, 2]}}", {gauss({3, 2, 5}), fixed({2, 2, 3})}},
      {"Data", "{type: Data, data_param: {source: unused, batch_size: 2}}", {}, 2, Phase::TRAIN, 0, false, false,
       false, "reads an LMDB or IDX source on disk on the host (tests/test_lmdb_data.cpp); nothing to compare"},
      {"Deconvolution", "{type: Deconvolution, convolution_param: {num_output: 2, kernel_size: 2, stride: 2}}",
       {gauss({2, 3, 3, 3})}, 1, Phase::TRAIN, 1e-3f},
      {"Dropout", "{type: Dropout, dropout_param: {dropout_ratio: 0.5}}", {gauss({4, 8, 8})}, 1, Phase::TRAIN,
       1e-5f, false, true, true},
      {"Dropout", "{type: Dropout, dropout_param: {dropout_ratio: 0.25}}", {gauss({4, 8, 8})}, 1, Phase::TRAIN,
       1e-5f, true, true, true},
      {"Dropout", "{type: Dropout, dropout_param: {dropout_ratio: 0.25, scale_train: false}}", {gauss({4, 8, 8})},
       1, Phase::TEST},
      {"DummyData",
       "{type: DummyData, dummy_data_param: {shape: {dim: [2, 3]}, data_filler: {type: constant, value: 2}}}", {}, 1,
       Phase::TRAIN, 1e-5f, false, false},
      // Random fillers draw from the context's stream on the host: the same values on both devices.
      {"DummyData",
       "{type: DummyData, dummy_data_param: {shape: [{dim: [2, 3]}, {dim: [5]}], data_filler: [{type: gaussian, "
       "std: 2}, {type: uniform, min: -1, max: 1}]}}",
       {}, 2, Phase::TRAIN, 0.f, false, false},
      {"Eltwise", "{type: Eltwise, eltwise_param: {coeff: [0.5, 2, -1]}}",
       {gauss({2, 3}), gauss({2, 3}), gauss({2, 3})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: PROD}}", {gauss({2, 3}), gauss({2, 3})}},
      // The gradient as top / x_k (Caffe's unstable form), and a third input's running max.
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: PROD, stable_prod_grad: false}}",
       {gauss({2, 3}), gauss({2, 3}), gauss({2, 3})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: MAX}}", {gauss({2, 3}), gauss({2, 3})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: MAX}}", {gauss({2, 3}), gauss({2, 3}), gauss({2, 3})}},
      {"ELU", "{type: ELU, elu_param: {alpha: 0.5}}", {gauss(nchw)}},
      in_place({"ELU", "{type: ELU, elu_param: {alpha: 0.5}}", {gauss(nchw)}}),
      {"Embed", "{type: Embed, embed_param: {num_output: 3, input_dim: 4}}", {labels({2, 3}, 4)}},
      // Many indices naming few rows: the weight gradient adds into the same rows.
      {"Embed", "{type: Embed, embed_param: {num_output: 5, input_dim: 3, bias_term: false}}", {labels({40, 7}, 3)}},
      {"EuclideanLoss", "{type: EuclideanLoss}", {gauss({3, 4}), gauss({3, 4})}},
      {"Exp", "{type: Exp, exp_param: {base: 2, scale: 0.5, shift: 1}}", {gauss(nchw)}},
      in_place({"Exp", "{type: Exp}", {gauss(nchw)}}),
      {"Filter", "{type: Filter}", {gauss({4, 2}), gauss({4, 3}), binary({4})}, 2},
      {"Filter", "{type: Filter}", {gauss({9, 2, 3}), binary({9, 1})}},
      {"Flatten", "{type: Flatten}", {gauss({2, 3, 2, 2})}},
      {"HDF5Data", "{type: HDF5Data, hdf5_data_param: {source: unused.txt, batch_size: 2}}", {}, 2, Phase::TRAIN, 0,
       false, false, false, "reads HDF5 files on disk on the host (tests/test_hdf5_data.cpp); nothing to compare"},
      // Its GPU path reads the bottoms on the host, which is what it is for; it has no top.
      {"HDF5Output", "{type: HDF5Output, hdf5_output_param: {file_name: unused.h5}}", {}, 0, Phase::TRAIN, 0, false,
       false, false,
       "writes its bottoms to an HDF5 file on the host (tests/test_hdf5_output_layer.cpp); no top to compare"},
      {"HingeLoss", "{type: HingeLoss}", {gauss({3, 5}), labels({3}, 5)}},
      {"HingeLoss", "{type: HingeLoss, hinge_loss_param: {norm: L2}}", {gauss({3, 5}), labels({3}, 5)}},
      {"HingeLoss", "{type: HingeLoss}", {gauss({300, 2, 2}), labels({300}, 4)}},
      {"Im2col", "{type: Im2col, convolution_param: {kernel_size: 3, pad: 1, stride: 2}}", {gauss({2, 2, 5, 5})}},
      {"Im2col", "{type: Im2col, convolution_param: {kernel_size: 3, pad: 2, dilation: 2}}", {gauss({2, 3, 6, 5})}},
      {"Im2col",
       "{type: Im2col, convolution_param: {kernel_h: 2, kernel_w: 3, stride_h: 3, stride_w: 1, pad_h: 1, pad_w: 0}}",
       {gauss({1, 2, 7, 4})}},
      {"ImageData", "{type: ImageData, image_data_param: {source: unused.txt, batch_size: 2}}", {}, 2, Phase::TRAIN,
       0, false, false, false,
       "decodes image files on disk on the host (tests/test_image_data.cpp); nothing to compare"},
      {"InfogainLoss", "{type: InfogainLoss}",
       {gauss({3, 4}), labels({3}, 4), {{1, 1, 4, 4}, Fill::positive, 0, false}}},
      {"InfogainLoss", "{type: InfogainLoss, infogain_loss_param: {axis: 2}}",
       {gauss({2, 3, 4}), labels({2, 3}, 4), {{4, 4}, Fill::positive, 0, false}}},
      {"InfogainLoss", "{type: InfogainLoss, loss_param: {ignore_label: 1, normalization: BATCH_SIZE}}",
       {gauss({100, 3, 2}), labels({100, 2}, 3), {{3, 3}, Fill::positive, 0, false}}, 2},
      {"InfogainLoss", "{type: InfogainLoss, loss_param: {ignore_label: 0}}",
       {gauss({300, 3}), labels({300}, 3), {{3, 3}, Fill::gaussian, 0, false}}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 4}}", {gauss({3, 2, 3})}, 1,
       Phase::TRAIN, 1e-3f},
      // 300 outputs: the bias gradient sums columns one thread each (256 or more columns).
      {"InnerProduct",
       "{type: InnerProduct, inner_product_param: {num_output: 300, bias_filler: {type: gaussian, std: 1}}}",
       {gauss({5, 7})}, 1, Phase::TRAIN, 1e-3f},
      {"Input", "{type: Input, input_param: {shape: {dim: [2, 3]}}}", {}, 1, Phase::TRAIN, 1e-5f, false, false},
      {"Log", "{type: Log, log_param: {base: 10, scale: 2, shift: 1}}", {positive(nchw)}},
      in_place({"Log", "{type: Log}", {positive(nchw)}}),
      {"LRN", "{type: LRN, lrn_param: {local_size: 3}}", {gauss({2, 4, 3, 3})}, 1, Phase::TRAIN, 1e-3f},
      {"LRN", "{type: LRN, lrn_param: {local_size: 3, norm_region: WITHIN_CHANNEL}}", {gauss({2, 4, 3, 3})}, 1,
       Phase::TRAIN, 1e-3f},
      // Recurrent layers: cont mixes restarts (0) and continuations (1); weights in
      // [-0.5, 0.5] (run_case), and the recurrence compounds the products' rounding: a
      // looser tolerance.
      {"LSTM", "{type: LSTM, recurrent_param: {num_output: 4}}", {gauss({3, 2, 5}), binary({3, 2})}, 1,
       Phase::TRAIN, 1e-3f},
      {"LSTM", "{type: LSTM, recurrent_param: {num_output: 3, expose_hidden: true}}",
       {gauss({4, 3, 2, 2}), binary({4, 3}), gauss({3, 5}), gauss({1, 3, 3}), gauss({1, 3, 3})}, 3, Phase::TRAIN,
       1e-3f},
      {"LSTM", "{type: LSTM, recurrent_param: {num_output: 40}}", {gauss({6, 20, 30}), binary({6, 20})}, 1,
       Phase::TRAIN, 1e-3f},
      {"LSTMUnit", "{type: LSTMUnit}", {gauss({1, 3, 4}), gauss({1, 3, 16}), binary({1, 3})}, 2},
      {"MultinomialLogisticLoss", "{type: MultinomialLogisticLoss}", {probability({3, 4}), labels({3}, 4)}},
      {"MultinomialLogisticLoss", "{type: MultinomialLogisticLoss}",
       {probability({300, 3, 1, 2}), labels({300, 1}, 6)}},
      {"MVN", "{type: MVN}", {gauss({2, 3, 4})}, 1, Phase::TRAIN, 1e-3f},
      {"MVN", "{type: MVN, mvn_param: {across_channels: true}}", {gauss({2, 3, 30, 20})}, 1, Phase::TRAIN, 1e-3f},
      {"MVN", "{type: MVN, mvn_param: {normalize_variance: false}}", {gauss({3, 2, 5})}, 1, Phase::TRAIN, 1e-3f},
      in_place({"MVN", "{type: MVN, mvn_param: {eps: 0.001}}", {gauss({2, 3, 4})}, 1, Phase::TRAIN, 1e-3f}),
      {"Parameter", "{type: Parameter, parameter_param: {shape: {dim: [3, 2]}}}", {}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 3, stride: 2}}", {gauss({2, 2, 6, 6})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 3, stride: 2, pad: 1}}",
       {gauss({2, 2, 6, 6})}},
      {"Power", "{type: Power, power_param: {power: 2, scale: 0.5, shift: 1}}", {gauss(nchw)}},
      in_place({"Power", "{type: Power, power_param: {power: 1.5, scale: 2}}", {positive(nchw)}}),
      {"Power", "{type: Power, power_param: {power: 0, shift: 3}}", {gauss(nchw)}},
      {"PReLU", "{type: PReLU}", {gauss(nchw)}},
      {"PReLU", "{type: PReLU, prelu_param: {channel_shared: true}}", {gauss(nchw)}},
      in_place({"PReLU", "{type: PReLU}", {gauss({2, 3, 40, 5})}}),
      {"Reduction", "{type: Reduction, reduction_param: {operation: SUMSQ, axis: 1}}", {gauss({2, 3, 4})}},
      {"Reduction", "{type: Reduction, reduction_param: {operation: MEAN, coeff: 2}}", {gauss({2, 3, 4})}},
      {"Reduction", "{type: Reduction, reduction_param: {operation: ASUM, axis: -1, coeff: -0.5}}", {gauss({2, 3, 4})}},
      {"Reduction", "{type: Reduction, reduction_param: {axis: 1}}", {gauss({3, 700})}},
      // RNN: as the LSTM cases (above) on cont, weights and tolerance.
      {"RNN", "{type: RNN, recurrent_param: {num_output: 4}}", {gauss({3, 2, 5}), binary({3, 2})}, 1, Phase::TRAIN,
       1e-3f},
      {"RNN", "{type: RNN, recurrent_param: {num_output: 3, expose_hidden: true}}",
       {gauss({4, 3, 2}), binary({4, 3}), gauss({3, 2}), gauss({1, 3, 3})}, 2, Phase::TRAIN, 1e-3f},
      {"ReLU", "{type: ReLU}", {gauss(nchw)}},
      {"ReLU", "{type: ReLU, relu_param: {negative_slope: 0.1}}", {gauss(nchw)}},
      in_place({"ReLU", "{type: ReLU, relu_param: {negative_slope: 0.1}}", {gauss(nchw)}}),
      {"Reshape", "{type: Reshape, reshape_param: {shape: {dim: [0, -1]}}}", {gauss({2, 3, 4})}},
      {"Scale", "{type: Scale, scale_param: {axis: 1, bias_term: true}}", {gauss({2, 3, 4})}},
      {"Scale", "{type: Scale, scale_param: {axis: 1}}", {gauss({2, 3, 4}), gauss({3})}},
      {"SigmoidCrossEntropyLoss", "{type: SigmoidCrossEntropyLoss}", {gauss({3, 4}), binary({3, 4})}},
      {"SigmoidCrossEntropyLoss",
       "{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: 1, normalization: VALID}}",
       {gauss({4, 100}), binary({4, 100})}},
      {"SigmoidCrossEntropyLoss", "{type: SigmoidCrossEntropyLoss, loss_param: {normalization: FULL}}",
       {gauss({2, 3, 5}), probability({2, 3, 5})}},
      {"Sigmoid", "{type: Sigmoid}", {gauss(nchw)}},
      in_place({"Sigmoid", "{type: Sigmoid}", {gauss(nchw)}}),
      {"Silence", "{type: Silence}", {gauss({2, 3}), gauss({4})}, 0},
      {"Slice", "{type: Slice, slice_param: {axis: 1, slice_point: [1]}}", {gauss({2, 3, 2})}, 2},
      {"Softmax", "{type: Softmax}", {gauss({2, 5, 3})}},
      // Rows of 64 classes or more take a block each; 300 is more than a block's threads.
      {"Softmax", "{type: Softmax}", {gauss({3, 100})}},
      in_place({"Softmax", "{type: Softmax}", {gauss({2, 300})}}),
      // NaN, ±inf and ±1e30 among the inputs: the same NaNs, infinities and zeros on both
      // devices (Softmax: with both kernels, a block per row and a thread per position).
      {"Softmax", "{type: Softmax}", {special({5, 70})}},
      {"Softmax", "{type: Softmax}", {special({3, 5, 4})}},
      // The reference ReLU (as Caffe: NaN for NaN and for -inf · 0); oneDNN's gives 0 for both
      // and passes the gradient at NaN, so the default engine is left out here (README).
      {"ReLU", "{type: ReLU, relu_param: {engine: CAFFE}}", {special({2, 3, 4, 5})}},
      {"ReLU", "{type: ReLU, relu_param: {negative_slope: 0.1, engine: CAFFE}}", {special({2, 3, 4, 5})}},
      {"Sigmoid", "{type: Sigmoid}", {special({2, 3, 4, 5})}},
      {"TanH", "{type: TanH}", {special({2, 3, 4, 5})}},
      {"AbsVal", "{type: AbsVal}", {special({2, 3, 4, 5})}},
      {"ELU", "{type: ELU}", {special({2, 3, 4, 5})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}", {special({2, 3, 4, 4})}},
      {"Pooling", "{type: Pooling, pooling_param: {pool: AVE, kernel_size: 2, stride: 2}}", {special({2, 3, 4, 4})}},
      {"Clip", "{type: Clip, clip_param: {min: -0.5, max: 0.5}}", {special({2, 3, 4, 5})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: MAX}}", {special({2, 3, 4}), gauss({2, 3, 4})}},
      {"SoftmaxWithLoss", "{type: SoftmaxWithLoss}", {gauss({4, 5}), labels({4}, 5)}},
      {"SoftmaxWithLoss", "{type: SoftmaxWithLoss}", {gauss({5, 80}), labels({5}, 80)}},
      {"Split", "{type: Split}", {gauss({2, 3})}, 2},
      {"SPP", "{type: SPP, spp_param: {pyramid_height: 2}}", {gauss({2, 2, 4, 4})}},
      {"SPP", "{type: SPP, spp_param: {pyramid_height: 3, pool: AVE}}", {gauss({2, 2, 8, 8})}},
      {"SPP", "{type: SPP, spp_param: {pyramid_height: 2, pool: MAX}}", {gauss({2, 3, 5, 7})}},
      {"SPP", "{type: SPP, spp_param: {pyramid_height: 1, pool: AVE}}", {gauss({2, 2, 3, 4})}},
      {"Swish", "{type: Swish, swish_param: {beta: 0.5}}", {gauss(nchw)}},
      in_place({"Swish", "{type: Swish}", {gauss(nchw)}}),
      {"TanH", "{type: TanH}", {gauss(nchw)}},
      in_place({"TanH", "{type: TanH}", {gauss(nchw)}}),
      {"Threshold", "{type: Threshold, threshold_param: {threshold: 0.1}}", {gauss(nchw)}},
      in_place({"Threshold", "{type: Threshold}", {gauss(nchw)}}),
      {"Tile", "{type: Tile, tile_param: {axis: 1, tiles: 2}}", {gauss({2, 3, 2})}},
      {"Tile", "{type: Tile, tile_param: {axis: 0, tiles: 3}}", {gauss({2, 3})}},
      {"Tile", "{type: Tile, tile_param: {axis: -1, tiles: 4}}", {gauss({2, 3, 2})}},
      {"CpuOnlyForTest", "", {}, 1, Phase::TRAIN, 0, false, false, false,
       "test-only layer without a GPU path (tests/test_blob.cpp)"},
  };
  return table;
}

// Dropout in TRAIN: the two devices draw different masks, so the GPU run is checked
// against its own mask: every top is 0 or x scale, the gradient follows the same
// mask, and about 1 - p of the elements are kept.
std::string check_dropout_mask(const LayerCase& c, const Outcome& gpu) {
  const size_t at = c.yaml.find("dropout_ratio: ");
  REQUIRE(at != std::string::npos);
  const float p = std::stof(c.yaml.substr(at + 15));
  const float scale = 1.f / (1.f - p);
  const std::vector<float>& x = gpu.input;
  const std::vector<float>& y = gpu.results.at(0);
  const std::vector<float>& dx = gpu.results.at(1);
  size_t kept = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool keep = y[i] != 0.f;
    kept += keep ? 1 : 0;
    const float want_y = keep ? x[i] * scale : 0.f, want_dx = keep ? gpu.top_diff[i] * scale : 0.f;
    if (std::fabs(y[i] - want_y) > 1e-5f * std::max(1.f, std::fabs(want_y)) ||
        std::fabs(dx[i] - want_dx) > 1e-5f * std::max(1.f, std::fabs(want_dx)))
      return "element " + std::to_string(i) + ": x " + std::to_string(x[i]) + ", y " + std::to_string(y[i]) +
             ", dx " + std::to_string(dx[i]);
  }
  const double fraction = static_cast<double>(kept) / static_cast<double>(x.size());
  if (std::fabs(fraction - (1.0 - p)) > 0.1) return "kept fraction " + std::to_string(fraction);
  return {};
}

// Case `c` on `gpu` and `reference` (by default `c`) on the CPU: what differs, or "" where
// they agree.
std::string against_cpu(const LayerCase& c, Context& gpu, const LayerCase* reference = nullptr) {
  Context cpu(static_cast<long long>(kSeed));
  try {
    const Outcome want = run_case(reference ? *reference : c, cpu);
    const Outcome got = run_case(c, gpu);
    gpu.cuda()->synchronize();
    return c.random ? check_dropout_mask(c, got) : mismatches(want, got, c.tolerance);
  } catch (const std::exception& e) {
    return std::string("threw: ") + e.what();
  }
}

}  // namespace

TEST_CASE("GPU table: every registered layer type has a case") {
  std::set<std::string> covered;
  for (const LayerCase& c : cases()) {
    covered.insert(c.type);
    INFO("case " << c.type);
    CHECK((!c.skip.empty() || !c.yaml.empty()));  // a case that runs needs its layer
  }
  std::string missing;
  for (const std::string& type : LayerRegistry::instance().types())
    if (!covered.count(type)) missing += " " + type;
  INFO("layer types with no case in tests/test_gpu_layers.cpp:" << missing);
  CHECK(missing.empty());
  // And no case names a type that does not exist (a renamed layer).
  for (const std::string& type : covered) {
    INFO("case for an unregistered type " << type);
    CHECK(LayerRegistry::instance().has(type));
  }
}

TEST_CASE("GPU table: every case runs on the CPU reference") {
  for (const LayerCase& c : cases()) {
    if (!c.skip.empty()) continue;
    INFO("case " << c.name());
    Context ctx(static_cast<long long>(kSeed));
    try {
      const Outcome o = run_case(c, ctx);
      CHECK(!o.results.empty());
      // Finite results from finite inputs (the NaN/Inf cases are there to give others).
      const bool special = std::any_of(c.bottoms.begin(), c.bottoms.end(),
                                       [](const Input& in) { return in.fill == Fill::special; });
      for (size_t r = 0; r < o.results.size() && !special; ++r) {
        INFO(o.names[r]);
        CHECK(std::all_of(o.results[r].begin(), o.results[r].end(), [](float v) { return std::isfinite(v); }));
      }
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: " << e.what());
    }
  }
}

TEST_CASE("GPU table: every layer on the GPU matches the CPU reference") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, static_cast<long long>(kSeed));
  std::set<std::string> not_on_gpu;
  int compared = 0;
  for (const LayerCase& c : cases()) {
    if (!c.skip.empty()) continue;
    if (!test::make_layer(c.yaml, c.phase).layer->supports(gpu->device())) {
      not_on_gpu.insert(c.type);
      continue;
    }
    const std::string failure = against_cpu(c, *gpu);
    ++compared;
    CHECK_MESSAGE(failure.empty(), c.type << " (" << c.name() << "): " << failure);
  }
  std::string pending;
  for (const auto& type : not_on_gpu) pending += " " + type;
  MESSAGE("compared " << compared << " cases on " << gpu->device().str());
  INFO("layer types with a runnable case but no GPU path:" << pending);
  CHECK(not_on_gpu.empty());
  CHECK(compared > 0);
}

// Random geometries (backend_table::geometry_cases) on the GPU against the plain CPU
// reference: cuDNN's convolutions, deconvolutions and average pooling by default, and
// every pooling geometry again on the hand-written kernels (engine: CAFFE).
TEST_CASE("GPU table: random convolution, deconvolution and pooling geometries match the CPU reference") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, static_cast<long long>(kSeed));
  int compared = 0;
  for (const LayerCase& c : geometry_cases(20261206, 90, ", engine: ENGINE", 1e-3f)) {
    const LayerCase reference = with_engine(c, "CAFFE");
    for (const char* engine : {"DEFAULT", "CAFFE"}) {
      if (std::string(engine) == "CAFFE" && c.type != "Pooling") continue;  // cuDNN's alone on the GPU
      const LayerCase on_gpu = with_engine(c, engine);
      const std::string failure = against_cpu(on_gpu, *gpu, &reference);
      ++compared;
      CHECK_MESSAGE(failure.empty(), on_gpu.name() << ": " << failure);
    }
  }
  MESSAGE("compared " << compared << " random geometries on " << gpu->device().str());
}

// Random nets (tests/random_net.hpp) on the GPU, each layer's default engine there,
// against the CPU reference: two TRAIN passes, every blob's value and gradient and
// every parameter gradient; then TEST nets on the running statistics those left, the
// GPU's sharing activation memory.
TEST_CASE("GPU table: random nets on the GPU match the CPU reference in every blob") {
  SKIP_WITHOUT_DEVICE();
  random_net::check_against_reference([] { return Context::gpu(0, 5); }, "DEFAULT", {1e-3, 1e-3, 1e-3}, 12);
}

// The same random nets under precision: tf32 (cuDNN's and cuBLAS's tensor cores on
// 10-bit mantissas) against the fp32 CPU reference, within the rounding: bf16's bounds
// (tests/test_onednn.cpp), which tf32's three more bits keep well inside. A buffer or
// descriptor of the wrong type is off by far more.
TEST_CASE("GPU table: random nets under precision tf32 match the fp32 CPU reference to the rounding") {
  SKIP_WITHOUT_DEVICE();
  random_net::check_against_reference(
      [] {
        auto tf32 = Context::gpu(0, 5);
        tf32->set_precision(Precision::tf32);
        return tf32;
      },
      "DEFAULT", {0.05, 0.6, 0.6}, 12);
}

// The rule "every layer has a GPU path" is checked wherever crema is built, device or
// not: a CUDA build's layers must say they run on CUDA, a CPU build's that they do not.
TEST_CASE("GPU table: every layer with a case says whether it runs on CUDA as the build allows") {
  const Device cuda{DeviceType::CUDA, 0};
#ifdef CREMA_WITH_CUDA
  const bool want = true;
#else
  const bool want = false;
#endif
  int checked = 0;
  for (const LayerCase& c : cases()) {
    INFO("case " << c.type << " " << c.name() << (c.skip.empty() ? "" : " (skipped: " + c.skip + ")"));
    if (c.yaml.empty()) {
      CHECK(c.skip.find("without a GPU path") != std::string::npos);
      continue;
    }
    CHECK(test::make_layer(c.yaml, c.phase).layer->supports(cuda) == want);
    CHECK(test::make_layer(c.yaml, c.phase).layer->supports(Device{}));  // the CPU, always
    ++checked;
  }
  CHECK(checked > 100);
}

namespace {

// The message forward ends with on ctx for bottoms holding `values` (the tops are
// fresh blobs), or "" when it does not throw.
std::string forward_error(const std::string& yaml, Context& ctx, const std::vector<std::vector<int>>& shapes,
                          const std::vector<std::vector<float>>& values) {
  auto t = test::make_layer(yaml);
  std::vector<std::unique_ptr<Blob>> owned;
  BlobVec bottom, top;
  for (size_t i = 0; i < shapes.size(); ++i) {
    owned.push_back(std::make_unique<Blob>(shapes[i]));
    REQUIRE(values[i].size() == static_cast<size_t>(owned.back()->count()));
    std::copy(values[i].begin(), values[i].end(), owned.back()->mutable_cpu_data());
    bottom.push_back(owned.back().get());
  }
  owned.push_back(std::make_unique<Blob>());
  top.push_back(owned.back().get());
  try {
    t.layer->setup(ctx, bottom, top);
    t.layer->forward(ctx, bottom, top);
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("GPU table: a bad index or label stops the GPU forward with the same message as the CPU") {
  SKIP_WITHOUT_DEVICE();
  auto gpu = Context::gpu(0, static_cast<long long>(kSeed));
  Context cpu(static_cast<long long>(kSeed));
  const std::vector<float> x(8, 1.f);  // (4, 2)
  // The first bad value is the one reported: 2.5 at position 1 (not whole) before 4 (out of range).
  const std::vector<std::vector<int>> reindex_shapes = {{4, 2}, {4}};
  const std::vector<std::vector<float>> reindex_values = {x, {0.f, 2.5f, 4.f, 1.f}};
  const std::string want = forward_error("{type: BatchReindex}", cpu, reindex_shapes, reindex_values);
  CHECK(want.find("position 1") != std::string::npos);
  CHECK(forward_error("{type: BatchReindex}", *gpu, reindex_shapes, reindex_values) == want);
  // Good indices pass on both.
  CHECK(forward_error("{type: BatchReindex}", *gpu, reindex_shapes, {x, {3.f, 0.f, 0.f, 2.f}}).empty());

  const std::vector<std::vector<int>> loss_shapes = {{3, 4}, {3}};
  const std::vector<std::vector<float>> loss_values = {std::vector<float>(12, 0.25f), {1.f, 7.f, -1.f}};
  const std::string want_label = forward_error("{type: MultinomialLogisticLoss}", cpu, loss_shapes, loss_values);
  CHECK(want_label.find("label 7") != std::string::npos);
  CHECK(forward_error("{type: MultinomialLogisticLoss}", *gpu, loss_shapes, loss_values) == want_label);
  CHECK(forward_error("{type: MultinomialLogisticLoss}", *gpu, loss_shapes,
                      {std::vector<float>(12, 0.25f), {1.f, 3.f, 0.f}})
            .empty());
  CHECK(forward_error("{type: HingeLoss}", *gpu, loss_shapes, loss_values) ==
        forward_error("{type: HingeLoss}", cpu, loss_shapes, loss_values));
  // Several different bad labels over many positions (more than one GPU thread's share):
  // the first one is named, as on the CPU, by the layers with their own counting kernels.
  std::vector<float> many_labels(600, 1.f);
  many_labels[300] = 9.f;
  many_labels[301] = -4.f;
  many_labels[599] = 6.f;
  for (const char* layer : {"{type: SoftmaxWithLoss}", "{type: Accuracy}"}) {
    const std::vector<std::vector<int>> shapes = {{600, 4}, {600}};
    const std::vector<std::vector<float>> values = {std::vector<float>(2400, 0.25f), many_labels};
    const std::string first = forward_error(layer, cpu, shapes, values);
    CHECK_MESSAGE(first.find("label 9") != std::string::npos, first);
    CHECK(forward_error(layer, *gpu, shapes, values) == first);
  }

  // Embed: 3 at position 2 is out of range [0, 3) before the fraction at position 3.
  const std::string embed = "{type: Embed, embed_param: {num_output: 2, input_dim: 3}}";
  const std::vector<std::vector<float>> embed_values = {{0.f, 1.f, 3.f, 2.5f}};
  const std::string want_embed = forward_error(embed, cpu, {{4}}, embed_values);
  CHECK(want_embed.find("position 2") != std::string::npos);
  CHECK(forward_error(embed, *gpu, {{4}}, embed_values) == want_embed);
  CHECK(forward_error(embed, *gpu, {{4}}, {{0.f, 1.f, 2.f, 2.f}}).empty());

  // InfogainLoss skips its ignore_label (9) and reports the first bad label after it (5).
  const std::string infogain = "{type: InfogainLoss, loss_param: {ignore_label: 9}}";
  const std::vector<std::vector<int>> infogain_shapes = {{3, 4}, {3}, {4, 4}};
  const std::vector<std::vector<float>> infogain_values = {std::vector<float>(12, 0.5f), {9.f, 5.f, -2.f},
                                                           std::vector<float>(16, 1.f)};
  const std::string want_infogain = forward_error(infogain, cpu, infogain_shapes, infogain_values);
  CHECK(want_infogain.find("label 5") != std::string::npos);
  CHECK(forward_error(infogain, *gpu, infogain_shapes, infogain_values) == want_infogain);
  CHECK(forward_error(infogain, *gpu, infogain_shapes,
                      {std::vector<float>(12, 0.5f), {9.f, 3.f, 0.f}, std::vector<float>(16, 1.f)})
            .empty());

  // ContrastiveLoss: a similarity of 0.5 at pair 1, before 2 at pair 2.
  const std::vector<std::vector<int>> pair_shapes = {{3, 2}, {3, 2}, {3}};
  const std::vector<std::vector<float>> pairs = {
      std::vector<float>(6, 1.f), std::vector<float>(6, 0.f), {1.f, 0.5f, 2.f}};
  const std::string want_pair = forward_error("{type: ContrastiveLoss}", cpu, pair_shapes, pairs);
  CHECK(want_pair.find("pair 1 in the batch is 0.5") != std::string::npos);
  CHECK(forward_error("{type: ContrastiveLoss}", *gpu, pair_shapes, pairs) == want_pair);
  CHECK(forward_error("{type: ContrastiveLoss}", *gpu, pair_shapes,
                      {std::vector<float>(6, 1.f), std::vector<float>(6, 0.f), {1.f, 0.f, 1.f}})
            .empty());

  // SigmoidCrossEntropyLoss: a target of 255 (an unscaled mask) at position 1, skipped where it is the
  // ignore_label; NaN refused either way.
  const std::string sigmoid = "{type: SigmoidCrossEntropyLoss}";
  const std::vector<std::vector<int>> target_shapes = {{2, 2}, {2, 2}};
  const std::vector<std::vector<float>> targets = {{0.f, 1.f, -1.f, 2.f}, {0.5f, 255.f, 1.f, 0.f}};
  const std::string want_target = forward_error(sigmoid, cpu, target_shapes, targets);
  CHECK(want_target.find("the target at position 1 of the batch is 255") != std::string::npos);
  CHECK(forward_error(sigmoid, *gpu, target_shapes, targets) == want_target);
  const std::string ignoring = "{type: SigmoidCrossEntropyLoss, loss_param: {ignore_label: 255}}";
  CHECK(forward_error(ignoring, *gpu, target_shapes, targets).empty());
  const std::vector<std::vector<float>> nan_target = {{0.f, 1.f, -1.f, 2.f}, {0.5f, 1.f, std::nanf(""), 0.f}};
  const std::string want_nan = forward_error(ignoring, cpu, target_shapes, nan_target);
  CHECK(want_nan.find("position 2 of the batch is nan") != std::string::npos);
  CHECK(forward_error(ignoring, *gpu, target_shapes, nan_target) == want_nan);
}
