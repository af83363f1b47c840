// The backend table (style.md, practice 8): one case per layer configuration, run
// forward and backward on the CPU reference and on a CUDA device from identical
// inputs, identical parameters and identical top gradients, and compared by
// normalised error with NaN/Inf parity. Every registered layer type must have a case
// (or a stated reason why it cannot be compared), so a new layer cannot skip its GPU
// path unnoticed.
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda/cuda_runtime_api.hpp"
#include "gpu_test_util.hpp"
#include "layer_test_util.hpp"

using namespace crema;

namespace {

constexpr uint64_t kSeed = 1234;

// How a bottom is filled, and whether it gets a gradient.
enum class Fill { gaussian, positive, probability, labels, binary };

struct Input {
  std::vector<int> shape;
  Fill fill = Fill::gaussian;
  int classes = 0;   // labels: integers in [0, classes)
  bool grad = true;  // propagate_down for this bottom
};

Input gauss(std::vector<int> shape) { return {std::move(shape), Fill::gaussian, 0, true}; }
Input positive(std::vector<int> shape) { return {std::move(shape), Fill::positive, 0, true}; }      // [0.5, 2)
Input probability(std::vector<int> shape) { return {std::move(shape), Fill::probability, 0, true}; }  // [0.1, 1)
Input labels(std::vector<int> shape, int classes) { return {std::move(shape), Fill::labels, classes, false}; }
Input binary(std::vector<int> shape) { return {std::move(shape), Fill::binary, 0, false}; }
// Gaussian values that only give a shape or a reference (no gradient).
Input fixed(std::vector<int> shape) { return {std::move(shape), Fill::gaussian, 0, false}; }

struct LayerCase {
  LayerCase(std::string type_, std::string yaml_, std::vector<Input> bottoms_, int tops_ = 1,
            Phase phase_ = Phase::TRAIN, float tolerance_ = 1e-4f, bool in_place_ = false, bool backward_ = true,
            bool random_ = false, std::string skip_ = {})
      : type(std::move(type_)),
        yaml(std::move(yaml_)),
        bottoms(std::move(bottoms_)),
        tops(tops_),
        phase(phase_),
        tolerance(tolerance_),
        in_place(in_place_),
        backward(backward_),
        random(random_),
        skip(std::move(skip_)) {}

  std::string type;
  std::string yaml;  // the layer map
  std::vector<Input> bottoms;
  int tops;
  Phase phase;
  float tolerance;  // on the normalised error
  bool in_place;    // top 0 is bottom 0
  bool backward;    // false for layers without a gradient (ArgMax, Accuracy, data)
  bool random;      // Dropout in TRAIN: compared by the mask it applies
  std::string skip;  // why the case cannot run here (then it is only listed)
  std::string name() const {
    return yaml + (in_place ? " in place" : "") + (phase == Phase::TEST ? " TEST" : "");
  }
};

LayerCase in_place(LayerCase c) {
  c.in_place = true;
  return c;
}

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
      {"Convolution", "{type: Convolution, convolution_param: {num_output: 3, kernel_size: 3, pad: 1, stride: 2}}",
       {gauss({2, 2, 5, 5})}, 1, Phase::TRAIN, 1e-3f},
      {"Crop", "{type: Crop, crop_param: {axis: 1, offset: [1, 1, 0]}}", {gauss({2, 3, 4, 3}), fixed({2, 2, 2, 3})}},
      {"Crop", "{type: Crop, crop_param: {offset: [1]}}", {gauss({2, 3, 5, 4}), fixed({1, 1, 3, 2})}},
      {"Crop", "{type: Crop, crop_param: {axis: 0, offset: [1, 0, 2]}}", {gauss({3, 2, 5}), fixed({2, 2, 3})}},
      {"Data", "", {}, 2, Phase::TRAIN, 0, false, false, false,
       "reads an LMDB or IDX source on disk on the host (tests/test_lmdb_data.cpp); nothing to compare"},
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
      {"Eltwise", "{type: Eltwise, eltwise_param: {coeff: [0.5, 2, -1]}}",
       {gauss({2, 3}), gauss({2, 3}), gauss({2, 3})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: PROD}}", {gauss({2, 3}), gauss({2, 3})}},
      {"Eltwise", "{type: Eltwise, eltwise_param: {operation: MAX}}", {gauss({2, 3}), gauss({2, 3})}},
      {"ELU", "{type: ELU, elu_param: {alpha: 0.5}}", {gauss(nchw)}},
      in_place({"ELU", "{type: ELU, elu_param: {alpha: 0.5}}", {gauss(nchw)}}),
      {"Embed", "{type: Embed, embed_param: {num_output: 3, input_dim: 4}}", {labels({2, 3}, 4)}},
      {"EuclideanLoss", "{type: EuclideanLoss}", {gauss({3, 4}), gauss({3, 4})}},
      {"Exp", "{type: Exp, exp_param: {base: 2, scale: 0.5, shift: 1}}", {gauss(nchw)}},
      in_place({"Exp", "{type: Exp}", {gauss(nchw)}}),
      {"Filter", "{type: Filter}", {gauss({4, 2}), gauss({4, 3}), binary({4})}, 2},
      {"Flatten", "{type: Flatten}", {gauss({2, 3, 2, 2})}},
      {"HDF5Data", "", {}, 2, Phase::TRAIN, 0, false, false, false,
       "reads HDF5 files on disk on the host (tests/test_hdf5_data.cpp); nothing to compare"},
      {"HDF5Output", "", {}, 0, Phase::TRAIN, 0, false, false, false,
       "writes its bottoms to an HDF5 file on the host (tests/test_hdf5_output_layer.cpp); nothing to compare"},
      {"HingeLoss", "{type: HingeLoss}", {gauss({3, 5}), labels({3}, 5)}},
      {"HingeLoss", "{type: HingeLoss, hinge_loss_param: {norm: L2}}", {gauss({3, 5}), labels({3}, 5)}},
      {"Im2col", "{type: Im2col, convolution_param: {kernel_size: 3, pad: 1, stride: 2}}", {gauss({2, 2, 5, 5})}},
      {"ImageData", "", {}, 2, Phase::TRAIN, 0, false, false, false,
       "decodes image files on disk on the host (tests/test_image_data.cpp); nothing to compare"},
      {"InfogainLoss", "{type: InfogainLoss}",
       {gauss({3, 4}), labels({3}, 4), {{1, 1, 4, 4}, Fill::positive, 0, false}}},
      {"InnerProduct", "{type: InnerProduct, inner_product_param: {num_output: 4}}", {gauss({3, 2, 3})}, 1,
       Phase::TRAIN, 1e-3f},
      {"Input", "{type: Input, input_param: {shape: {dim: [2, 3]}}}", {}, 1, Phase::TRAIN, 1e-5f, false, false},
      {"Log", "{type: Log, log_param: {base: 10, scale: 2, shift: 1}}", {positive(nchw)}},
      in_place({"Log", "{type: Log}", {positive(nchw)}}),
      {"LRN", "{type: LRN, lrn_param: {local_size: 3}}", {gauss({2, 4, 3, 3})}, 1, Phase::TRAIN, 1e-3f},
      {"LRN", "{type: LRN, lrn_param: {local_size: 3, norm_region: WITHIN_CHANNEL}}", {gauss({2, 4, 3, 3})}, 1,
       Phase::TRAIN, 1e-3f},
      {"MultinomialLogisticLoss", "{type: MultinomialLogisticLoss}", {probability({3, 4}), labels({3}, 4)}},
      {"MultinomialLogisticLoss", "{type: MultinomialLogisticLoss}",
       {probability({300, 3, 1, 2}), labels({300, 1}, 6)}},
      {"MVN", "{type: MVN}", {gauss({2, 3, 4})}, 1, Phase::TRAIN, 1e-3f},
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
      {"SoftmaxWithLoss", "{type: SoftmaxWithLoss}", {gauss({4, 5}), labels({4}, 5)}},
      {"Split", "{type: Split}", {gauss({2, 3})}, 2},
      {"SPP", "{type: SPP, spp_param: {pyramid_height: 2}}", {gauss({2, 2, 4, 4})}},
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

void fill(Blob& b, const Input& in, Rng& rng) {
  float* p = b.mutable_cpu_data();
  for (int i = 0; i < b.count(); ++i) {
    switch (in.fill) {
      case Fill::gaussian: p[i] = rng.gaussian(0.f, 1.f); break;
      case Fill::positive: p[i] = rng.uniform(0.5f, 2.f); break;
      case Fill::probability: p[i] = rng.uniform(0.1f, 1.f); break;
      case Fill::labels: p[i] = static_cast<float>(rng.below(static_cast<uint32_t>(in.classes))); break;
      case Fill::binary: p[i] = static_cast<float>(rng.below(2)); break;
    }
  }
}

std::vector<float> values(const float* p, int n) { return {p, p + n}; }

// What one run of a case produced, read back to the host.
struct Outcome {
  std::vector<float> input, top_diff;        // bottom 0 and top 0's gradient, as given
  std::vector<std::vector<float>> results;   // tops, bottom diffs, params, param diffs
  std::vector<std::string> names;            // what each result is
};

Outcome run_case(const LayerCase& c, Context& ctx) {
  auto t = test::make_layer(c.yaml, c.phase);
  Rng rng(kSeed);
  std::vector<std::unique_ptr<Blob>> owned;
  BlobVec bottom, top;
  for (const Input& in : c.bottoms) {
    owned.push_back(std::make_unique<Blob>(in.shape));
    fill(*owned.back(), in, rng);
    bottom.push_back(owned.back().get());
  }
  if (c.in_place) {
    top.push_back(bottom[0]);
  } else {
    for (int i = 0; i < c.tops; ++i) {
      owned.push_back(std::make_unique<Blob>());
      top.push_back(owned.back().get());
    }
  }
  Outcome o;
  if (!bottom.empty()) o.input = values(bottom[0]->cpu_data(), bottom[0]->count());
  ctx.rng().seed(kSeed);
  t.layer->setup(ctx, bottom, top);
  // Parameters from the test's stream (not the fillers), positive so that BatchNorm's
  // variances are valid.
  for (auto& p : t.layer->blobs()) test::fill_uniform(*p, rng, 0.5f, 1.5f);
  ctx.rng().seed(kSeed + 1);
  t.layer->forward(ctx, bottom, top);
  for (size_t i = 0; i < top.size(); ++i) {
    o.results.push_back(values(top[i]->cpu_data(), top[i]->count()));
    o.names.push_back("top " + std::to_string(i));
  }
  if (c.backward) {
    for (auto* y : top) {
      float* dy = y->mutable_cpu_diff();
      for (int i = 0; i < y->count(); ++i) dy[i] = rng.gaussian(0.f, 1.f);
    }
    if (!top.empty()) o.top_diff = values(top[0]->cpu_diff(), top[0]->count());
    for (auto& p : t.layer->blobs()) p->set_diff(0.f);
    std::vector<bool> propagate;
    for (const Input& in : c.bottoms) propagate.push_back(in.grad);
    t.layer->backward(ctx, top, propagate, bottom);
    for (size_t i = 0; i < bottom.size(); ++i) {
      if (!propagate[i]) continue;
      o.results.push_back(values(bottom[i]->cpu_diff(), bottom[i]->count()));
      o.names.push_back("bottom " + std::to_string(i) + " diff");
    }
  }
  for (size_t i = 0; i < t.layer->blobs().size(); ++i) {
    const Blob& p = *t.layer->blobs()[i];
    o.results.push_back(values(p.cpu_data(), p.count()));
    o.names.push_back("param " + std::to_string(i));
    if (!c.backward) continue;
    o.results.push_back(values(p.cpu_diff(), p.count()));
    o.names.push_back("param " + std::to_string(i) + " diff");
  }
  return o;
}

// max |a - b| / max(1, max |a|), with NaN where either side has a NaN or an Inf
// that the other lacks (a is the reference).
double normalised_error(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::nan("");
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return std::nan("");
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return std::nan("");
      continue;
    }
    if (std::isnan(a[i])) continue;
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
  }
  return diff / scale;
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

}  // namespace

TEST_CASE("GPU table: every registered layer type has a case") {
  std::set<std::string> covered;
  for (const LayerCase& c : cases()) {
    covered.insert(c.type);
    INFO("case " << c.type);
    CHECK((c.skip.empty() ? !c.yaml.empty() : c.yaml.empty()));
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
      for (size_t r = 0; r < o.results.size(); ++r) {
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
    Context cpu(static_cast<long long>(kSeed));
    std::string failure;
    try {
      const Outcome want = run_case(c, cpu);
      const Outcome got = run_case(c, *gpu);
      gpu->cuda()->synchronize();
      if (c.random) {
        failure = check_dropout_mask(c, got);
      } else if (got.results.size() != want.results.size()) {
        failure = "the GPU run gave " + std::to_string(got.results.size()) + " results, the CPU " +
                  std::to_string(want.results.size());
      } else {
        for (size_t r = 0; r < want.results.size(); ++r) {
          const double err = normalised_error(want.results[r], got.results[r]);
          if (!(err <= c.tolerance)) {
            std::ostringstream s;
            s << want.names[r] << ": normalised error " << err << " > " << c.tolerance;
            failure += (failure.empty() ? "" : "; ") + s.str();
          }
        }
      }
    } catch (const std::exception& e) {
      failure = std::string("threw: ") + e.what();
    }
    ++compared;
    CHECK_MESSAGE(failure.empty(), c.type << " (" << c.name() << "): " << failure);
  }
  std::string pending;
  for (const auto& type : not_on_gpu) pending += " " + type;
  MESSAGE("compared " << compared << " cases on " << gpu->device().str() << "; no GPU path yet:" << pending);
  CHECK(compared > 0);
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
}
