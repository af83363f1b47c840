// Helpers for layer tests: build a layer from a YAML snippet, fill blobs, and check
// gradients by central differences (Caffe's GradientChecker, reseeding the random
// stream before every forward so stochastic layers such as Dropout are checkable).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.hpp"
#include "engine/layer.hpp"
#include "engine/net.hpp"
#include "io/yaml_config.hpp"

namespace crema::test {

// Owns the config tree the spec points into.
struct LayerUnderTest {
  std::shared_ptr<Node> config;
  std::unique_ptr<Layer> layer;
};

// `yaml` is one layer map, e.g. "{type: ReLU, relu_param: {negative_slope: 0.1}}".
inline LayerUnderTest make_layer(const std::string& yaml, Phase phase = Phase::TRAIN) {
  LayerUnderTest t;
  t.config = std::make_shared<Node>(io::parse_yaml(yaml, "<test>"));
  if (!t.config->find("name")) t.config->set("name", Node::scalar("test_layer"));
  LayerSpec spec = parse_layer_spec(*t.config);
  spec.phase = phase;
  t.layer = LayerRegistry::instance().create(spec);
  return t;
}

inline void fill_gaussian(Blob& b, Rng& rng, float stddev = 1.f, float mean = 0.f) {
  float* p = b.mutable_cpu_data();
  for (int i = 0; i < b.count(); ++i) p[i] = rng.gaussian(mean, stddev);
}

inline void fill_uniform(Blob& b, Rng& rng, float lo, float hi) {
  float* p = b.mutable_cpu_data();
  for (int i = 0; i < b.count(); ++i) p[i] = rng.uniform(lo, hi);
}

// x[i] = first + i.
inline void fill_counting(Blob& b, float first) {
  float* p = b.mutable_cpu_data();
  for (int i = 0; i < b.count(); ++i) p[i] = first + static_cast<float>(i);
}

inline void set_values(Blob& b, const std::vector<float>& v) {
  REQUIRE(static_cast<int>(v.size()) == b.count());
  std::copy(v.begin(), v.end(), b.mutable_cpu_data());
}

inline void check_values(const Blob& b, const std::vector<float>& want) {
  REQUIRE(static_cast<int>(want.size()) == b.count());
  for (int i = 0; i < b.count(); ++i) {
    INFO("element " << i);
    CHECK(b.cpu_data()[i] == doctest::Approx(want[static_cast<size_t>(i)]));
  }
}

// Sets the layer up on x -> y and runs forward, then gives y a gaussian gradient
// from `rng` and zeroes the parameter gradients, ready for backward.
inline void forward_with_random_top_diff(Layer& layer, Context& ctx, Blob& x, Blob& y, Rng& rng) {
  layer.setup(ctx, {&x}, {&y});
  layer.forward(ctx, {&x}, {&y});
  Blob dy(y.shape());  // drawn aside: a backward may read y's data
  fill_gaussian(dy, rng);
  std::copy(dy.cpu_data(), dy.cpu_data() + dy.count(), y.mutable_cpu_diff());
  for (auto& p : layer.blobs()) p->set_diff(0.f);
}

// The shape of the top after setting the layer `yaml` up on a bottom of `shape`.
inline std::vector<int> top_shape(const std::string& yaml, const std::vector<int>& shape) {
  auto t = make_layer(yaml);
  Blob x(shape), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  return y.shape();
}

// A bottom of `shape` filled with N(0, stddev²) drawn from Rng(seed).
struct GaussianInput {
  std::vector<int> shape;
  float stddev = 1.f;
  uint64_t seed = 3;
};

inline Blob gaussian_blob(const GaussianInput& input) {
  Blob x(input.shape);
  Rng rng(input.seed);
  fill_gaussian(x, rng, input.stddev);
  return x;
}

// For layers whose top is a view of the bottom (Flatten, Reshape), already set up
// on x -> y: forward makes y share x's data, and backward hands y's gradient back
// to x unchanged.
inline void check_view_forward_backward(Layer& layer, Context& ctx, Blob& x, Blob& y) {
  layer.forward(ctx, {&x}, {&y});
  CHECK(y.cpu_data() == x.cpu_data());
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = static_cast<float>(i);
  layer.backward(ctx, {&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) CHECK(x.cpu_diff()[i] == static_cast<float>(i));
}

enum class Compare { exact, approx };

// Runs the layer `yaml` out of place (x -> y) and, as a second instance, in place
// (x -> x) on the same input and the same top gradient: both must give the same top
// and the same bottom gradient.
inline void check_in_place_matches_out_of_place(const std::string& yaml, const GaussianInput& input,
                                                Compare compare = Compare::exact) {
  Blob x = gaussian_blob(input), y, x_in_place(input.shape);
  x_in_place.copy_from(x);
  Context ctx(1);
  auto out = make_layer(yaml);
  auto in = make_layer(yaml);
  out.layer->setup(ctx, {&x}, {&y});
  in.layer->setup(ctx, {&x_in_place}, {&x_in_place});
  out.layer->forward(ctx, {&x}, {&y});
  in.layer->forward(ctx, {&x_in_place}, {&x_in_place});
  for (int i = 0; i < x.count(); ++i) y.mutable_cpu_diff()[i] = x_in_place.mutable_cpu_diff()[i] = 0.1f * i - 1;
  out.layer->backward(ctx, {&y}, {true}, {&x});
  in.layer->backward(ctx, {&x_in_place}, {true}, {&x_in_place});
  for (int i = 0; i < x.count(); ++i) {
    INFO("element " << i);
    if (compare == Compare::exact) {
      CHECK(x_in_place.cpu_data()[i] == y.cpu_data()[i]);
      CHECK(x_in_place.cpu_diff()[i] == x.cpu_diff()[i]);
    } else {
      CHECK(x_in_place.cpu_data()[i] == doctest::Approx(y.cpu_data()[i]));
      CHECK(x_in_place.cpu_diff()[i] == doctest::Approx(x.cpu_diff()[i]));
    }
  }
}

struct GradCheck {
  float step = 1e-2f;
  float threshold = 1e-2f;
  // Elements whose input lies within kink_range of kink are skipped (ReLU at 0).
  float kink = 0.f;
  float kink_range = -1.f;
  uint64_t seed = 1701;
  // Bottoms to check (empty = all); parameter blobs are always checked.
  std::vector<int> bottoms;
  bool check_params = true;
  // Elements per blob to check (0 = all); spread evenly over the blob.
  int max_checks = 0;
  // Where the layer runs: a GPU context for the device's gradient checks; null, a CPU
  // context seeded with `seed`.
  Context* ctx = nullptr;
};

// Objective: sum over tops of <top, r> with fixed random r (so every element of
// every top contributes), or the layer's weighted loss for loss layers.
inline double objective(Layer& layer, Context& ctx, const BlobVec& bottom, const BlobVec& top,
                        const std::vector<std::vector<float>>& r, uint64_t seed) {
  ctx.rng().seed(seed);
  layer.forward(ctx, bottom, top);
  double f = 0;
  for (size_t t = 0; t < top.size(); ++t) {
    const float* d = top[t]->cpu_data();
    for (int i = 0; i < top[t]->count(); ++i) f += static_cast<double>(d[i]) * r[t][static_cast<size_t>(i)];
  }
  return f;
}

inline void check_gradients(Layer& layer, const BlobVec& bottom, const BlobVec& top, GradCheck opt = {}) {
  std::unique_ptr<Context> own;
  if (!opt.ctx) own = std::make_unique<Context>(static_cast<long long>(opt.seed));
  Context& ctx = opt.ctx ? *opt.ctx : *own;
  layer.setup(ctx, bottom, top);
  // Random objective weights (loss layers: their loss weight on the scalar loss).
  Rng rng(opt.seed + 7);
  std::vector<std::vector<float>> r(top.size());
  for (size_t t = 0; t < top.size(); ++t) {
    r[t].resize(static_cast<size_t>(top[t]->count()));
    for (auto& v : r[t]) v = layer.is_loss() ? layer.loss_weight(static_cast<int>(t)) : rng.uniform(-1.f, 1.f);
  }
  std::vector<Blob*> targets;
  std::vector<bool> propagate(bottom.size(), false);
  for (size_t b = 0; b < bottom.size(); ++b) {
    const bool wanted = opt.bottoms.empty() ||
                        std::find(opt.bottoms.begin(), opt.bottoms.end(), static_cast<int>(b)) != opt.bottoms.end();
    if (wanted) {
      propagate[b] = true;
      targets.push_back(bottom[b]);
    }
  }
  if (opt.check_params)
    for (auto& p : layer.blobs()) targets.push_back(p.get());

  // Analytic gradients.
  for (auto& p : layer.blobs()) p->set_diff(0.f);
  objective(layer, ctx, bottom, top, r, opt.seed);
  for (size_t t = 0; t < top.size(); ++t) {
    float* d = top[t]->mutable_cpu_diff();
    for (int i = 0; i < top[t]->count(); ++i) d[i] = r[t][static_cast<size_t>(i)];
  }
  for (auto* b : bottom) b->set_diff(0.f);
  layer.backward(ctx, top, propagate, bottom);
  std::vector<std::vector<float>> analytic;
  for (auto* b : targets) analytic.emplace_back(b->cpu_diff(), b->cpu_diff() + b->count());

  for (size_t k = 0; k < targets.size(); ++k) {
    Blob* b = targets[k];
    const int n = b->count();
    const int stride = opt.max_checks > 0 && n > opt.max_checks ? n / opt.max_checks : 1;
    for (int i = 0; i < n; i += stride) {
      float* x = b->mutable_cpu_data();
      const float x0 = x[i];
      if (opt.kink_range > 0 && std::fabs(x0 - opt.kink) < opt.kink_range) continue;
      x[i] = x0 + opt.step;
      const double fp = objective(layer, ctx, bottom, top, r, opt.seed);
      b->mutable_cpu_data()[i] = x0 - opt.step;
      const double fm = objective(layer, ctx, bottom, top, r, opt.seed);
      b->mutable_cpu_data()[i] = x0;
      const double estimated = (fp - fm) / (2.0 * opt.step);
      const double computed = analytic[k][static_cast<size_t>(i)];
      const double scale = std::max({std::fabs(computed), std::fabs(estimated), 1.0});
      INFO("layer " << layer.type() << ", blob " << k << " (" << b->shape_string() << "), element " << i
                    << ": analytic " << computed << ", numeric " << estimated);
      CHECK(std::fabs(computed - estimated) <= opt.threshold * scale);
    }
  }
}

// check_gradients for the layer `yaml` with one bottom, filled from `input`, and one top.
inline void check_gradients(const std::string& yaml, const GaussianInput& input, GradCheck opt = {}) {
  auto t = make_layer(yaml);
  Blob x = gaussian_blob(input), y;
  check_gradients(*t.layer, {&x}, {&y}, opt);
}

// A data layer (no bottoms; tops data and label) set up in `phase` with a context
// seeded by `seed`.
struct DataUnderTest {
  LayerUnderTest t;
  Blob data, label;
  Context ctx;
  DataUnderTest(const std::string& yaml, Phase phase, long long seed) : t(make_layer(yaml, phase)), ctx(seed) {
    t.layer->setup(ctx, {}, {&data, &label});
  }
  void forward() { t.layer->forward(ctx, {}, {&data, &label}); }
  std::vector<float> values() const { return {data.cpu_data(), data.cpu_data() + data.count()}; }
  std::vector<float> labels() const { return {label.cpu_data(), label.cpu_data() + label.count()}; }
  // One forward: the batch's values followed by its labels.
  std::vector<float> next() {
    forward();
    std::vector<float> out = values();
    const std::vector<float> l = labels();
    out.insert(out.end(), l.begin(), l.end());
    return out;
  }
};

// A TEST net built from YAML text, with what it points into.
struct TestNet {
  TestNet(const std::string& yaml, uint64_t seed)
      : root(io::parse_yaml(yaml, "net.yaml")),
        spec(NetSpec::parse(root)),
        ctx(seed),
        net(spec, spec.state_for(Phase::TEST), ctx, true) {}
  Node root;
  NetSpec spec;
  Context ctx;
  Net net;
};

}  // namespace crema::test
