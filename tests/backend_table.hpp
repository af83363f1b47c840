// The backend table's machinery (style.md, practice 8), shared by the GPU table
// (tests/test_gpu_layers.cpp) and the CPU engine table (tests/test_onednn.cpp): a
// case is one layer configuration with its bottoms; run_case runs it forward and
// backward from inputs, parameters and top gradients drawn from a fixed seed, so two
// backends given the same case see identical data, and normalised_error compares
// what they produced.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "layer_test_util.hpp"

namespace backend_table {

using namespace crema;

inline constexpr uint64_t kSeed = 1234;

// How a bottom is filled, and whether it gets a gradient.
// special: gaussian, with every seventh value NaN, +inf, -inf or ±1e30 in turn, for
// NaN/Inf parity.
enum class Fill { gaussian, positive, probability, labels, binary, special };

struct Input {
  std::vector<int> shape;
  Fill fill = Fill::gaussian;
  int classes = 0;   // labels: integers in [0, classes)
  bool grad = true;  // propagate_down for this bottom
};

inline Input gauss(std::vector<int> shape) { return {std::move(shape), Fill::gaussian, 0, true}; }
inline Input special(std::vector<int> shape) { return {std::move(shape), Fill::special, 0, true}; }
inline Input positive(std::vector<int> shape) { return {std::move(shape), Fill::positive, 0, true}; }      // [0.5, 2)
inline Input probability(std::vector<int> shape) { return {std::move(shape), Fill::probability, 0, true}; }  // [0.1, 1)
inline Input labels(std::vector<int> shape, int classes) { return {std::move(shape), Fill::labels, classes, false}; }
inline Input binary(std::vector<int> shape) { return {std::move(shape), Fill::binary, 0, false}; }
// Gaussian values that only give a shape or a reference (no gradient).
inline Input fixed(std::vector<int> shape) { return {std::move(shape), Fill::gaussian, 0, false}; }

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
  // Why the case cannot run here (then it is only listed). A skipped case still gives
  // the yaml of a layer that can be built, for the GPU-path check, unless the layer
  // has no GPU path: then yaml is empty and skip says "without a GPU path".
  std::string skip;
  std::string name() const {
    return yaml + (in_place ? " in place" : "") + (phase == Phase::TEST ? " TEST" : "");
  }
};

inline LayerCase in_place(LayerCase c) {
  c.in_place = true;
  return c;
}


inline void fill(Blob& b, const Input& in, Rng& rng) {
  float* p = b.mutable_cpu_data();
  for (int i = 0; i < b.count(); ++i) {
    switch (in.fill) {
      case Fill::gaussian: p[i] = rng.gaussian(0.f, 1.f); break;
      case Fill::positive: p[i] = rng.uniform(0.5f, 2.f); break;
      case Fill::probability: p[i] = rng.uniform(0.1f, 1.f); break;
      case Fill::labels: p[i] = static_cast<float>(rng.below(static_cast<uint32_t>(in.classes))); break;
      case Fill::binary: p[i] = static_cast<float>(rng.below(2)); break;
      case Fill::special: {
        const float odd[] = {std::nanf(""), INFINITY, -INFINITY, 1e30f, -1e30f};
        p[i] = i % 7 == 3 ? odd[(i / 7) % 5] : rng.gaussian(0.f, 1.f);
        break;
      }
    }
  }
}

inline std::vector<float> values(const float* p, int n) { return {p, p + n}; }

// What one run of a case produced, read back to the host.
struct Outcome {
  std::vector<float> input, top_diff;        // bottom 0 and top 0's gradient, as given
  std::vector<std::vector<float>> results;   // tops, bottom diffs, params, param diffs
  std::vector<std::string> names;            // what each result is
};

// `initial_param_diff`: what the parameter gradients hold before backward (a
// nonzero value checks that a backend accumulates into them, as Caffe's layers do).
inline Outcome run_case(const LayerCase& c, Context& ctx, float initial_param_diff = 0.f) {
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
  // variances are valid; small and of either sign for the recurrent layers, whose gates
  // would otherwise saturate and carry next to nothing back through time.
  const bool recurrent = c.type == "LSTM" || c.type == "RNN";
  for (auto& p : t.layer->blobs()) test::fill_uniform(*p, rng, recurrent ? -0.5f : 0.5f, recurrent ? 0.5f : 1.5f);
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
    for (auto& p : t.layer->blobs()) p->set_diff(initial_param_diff);
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
inline double normalised_error(const std::vector<float>& a, const std::vector<float>& b) {
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

// |a - b| / |a| (L2 norms), with NaN where normalised_error has one. |a| counts as at
// least `floor` per element (root mean square): a gradient that is zero in exact
// arithmetic (a bias before BatchNorm) is rounding noise on both sides, of no size to
// compare relatively.
inline double relative_l2(const std::vector<float>& a, const std::vector<float>& b, double floor = 1e-4) {
  if (std::isnan(normalised_error(a, b))) return std::nan("");
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) continue;  // equal on both sides (normalised_error checked)
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(a[i]) * a[i];
  }
  const double least = floor * floor * static_cast<double>(a.size());
  return diff == 0 ? 0 : std::sqrt(diff / std::max(norm, least));
}

// What differs between two outcomes beyond `tolerance`, one "name: error" per
// result, or "" where they agree.
inline std::string mismatches(const Outcome& want, const Outcome& got, double tolerance) {
  if (got.results.size() != want.results.size())
    return "one run gave " + std::to_string(got.results.size()) + " results, the other " +
           std::to_string(want.results.size());
  std::ostringstream failure;
  for (size_t r = 0; r < want.results.size(); ++r) {
    const double err = normalised_error(want.results[r], got.results[r]);
    if (!(err <= tolerance))
      failure << (failure.tellp() > 0 ? "; " : "") << want.names[r] << ": normalised error " << err << " > "
              << tolerance;
  }
  return failure.str();
}

// `yaml` with its "ENGINE" placeholder set to `engine`.
inline std::string with_engine(std::string yaml, const std::string& engine) {
  const size_t at = yaml.find("ENGINE");
  REQUIRE(at != std::string::npos);
  return yaml.replace(at, 6, engine);
}

inline LayerCase with_engine(const LayerCase& c, const std::string& engine) {
  LayerCase e = c;
  e.yaml = with_engine(c.yaml, engine);
  return e;
}

// Seeded random geometries for the layers whose indexing is the easiest to get wrong:
// Convolution, Deconvolution and Pooling with kernels, strides, pads, dilations and
// groups drawn per axis (so height and width differ), images from the smallest that
// takes the kernel up to a few pixels more, Caffe's CEIL and FLOOR rounding, and MAX
// windows full of ties. `engine` is written into each layer's parameters (e.g.
// ", engine: ENGINE"; empty for the default). Every case is valid; the tables compare
// them as their own cases.
inline std::vector<LayerCase> geometry_cases(uint64_t seed, int count, const std::string& engine, float tolerance) {
  Rng rng(seed);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rng.below(static_cast<uint32_t>(hi - lo + 1))); };
  auto pair = [](const char* key, int h, int w) {
    return std::string(key) + "_h: " + std::to_string(h) + ", " + key + "_w: " + std::to_string(w);
  };
  std::vector<LayerCase> cases;
  for (int i = 0; i < count; ++i) {
    const int n = pick(1, 3);
    const int kind = i % 3;  // convolution, deconvolution, pooling in turn
    if (kind < 2) {
      const int group = std::vector<int>{1, 1, 2, 3}[rng.below(4)];
      const int channels = group * pick(1, 3), outputs = group * pick(1, 3);
      const int kh = pick(1, 5), kw = pick(1, 5), sh = pick(1, 3), sw = pick(1, 3);
      const int dh = pick(1, 2), dw = pick(1, 2);
      const int extent_h = dh * (kh - 1) + 1, extent_w = dw * (kw - 1) + 1;
      int ph = pick(0, kh - 1), pw = pick(0, kw - 1), h = 0, w = 0;
      if (kind == 0) {  // the padded image holds the dilated kernel at least once
        h = pick(std::max(1, extent_h - 2 * ph), extent_h - 2 * ph + 6);
        w = pick(std::max(1, extent_w - 2 * pw), extent_w - 2 * pw + 6);
      } else {  // the output, stride * (in - 1) + extent - 2 pad, is at least one pixel
        h = pick(1, 5);
        w = pick(1, 5);
        ph = std::min(ph, (sh * (h - 1) + extent_h - 1) / 2);
        pw = std::min(pw, (sw * (w - 1) + extent_w - 1) / 2);
      }
      const std::string type = kind == 0 ? "Convolution" : "Deconvolution";
      const std::string yaml = "{type: " + type + ", convolution_param: {num_output: " + std::to_string(outputs) +
                               ", group: " + std::to_string(group) + ", " + pair("kernel", kh, kw) + ", " +
                               pair("stride", sh, sw) + ", " + pair("pad", ph, pw) + ", dilation: [" +
                               std::to_string(dh) + ", " + std::to_string(dw) + "]" +
                               (rng.below(3) == 0 ? ", bias_term: false" : "") + engine + "}}";
      cases.push_back({type, yaml, {gauss({n, channels, h, w})}, 1, Phase::TRAIN, tolerance});
    } else {
      const bool max = rng.below(2) == 0;
      const int channels = pick(1, 4);
      std::string geometry;
      int h = 0, w = 0;
      if (rng.below(6) == 0) {
        geometry = "global_pooling: true";
        h = pick(1, 6);
        w = pick(1, 6);
      } else {
        const int kh = pick(1, 4), kw = pick(1, 4), sh = pick(1, 3), sw = pick(1, 3);
        const int ph = pick(0, kh - 1), pw = pick(0, kw - 1);
        h = pick(std::max(1, kh - 2 * ph), kh - 2 * ph + 7);
        w = pick(std::max(1, kw - 2 * pw), kw - 2 * pw + 7);
        geometry = pair("kernel", kh, kw) + ", " + pair("stride", sh, sw) + ", " + pair("pad", ph, pw) +
                   (rng.below(2) == 0 ? ", round_mode: FLOOR" : "");
      }
      const std::string yaml = std::string("{type: Pooling, pooling_param: {pool: ") + (max ? "MAX" : "AVE") + ", " +
                               geometry + engine + "}}";
      Input in = gauss({n, channels, h, w});
      if (max && rng.below(3) == 0) in.fill = Fill::binary;  // ties: the first maximum takes the gradient
      cases.push_back({"Pooling", yaml, {in}, 1, Phase::TRAIN, tolerance});
    }
  }
  return cases;
}

}  // namespace backend_table
