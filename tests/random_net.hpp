// Random nets for comparing engines and devices (tests/test_onednn.cpp: oneDNN against
// the reference; tests/test_gpu_layers.cpp: the GPU against the CPU): layers with
// layouts or device paths of their own (convolutions, pooling, LRN, activations,
// BatchNorm, Scale, Eltwise, Split) mixed with layers that read plain values (Concat,
// Slice, Crop, Reshape, PReLU, Bias, ELU, Power, AbsVal, InnerProduct), joined in random
// branches, in place or not, with channel counts on and off oneDNN's blocks. A layer
// that leaves its top in a form the next one misreads, or a backward that loses a
// branch's gradient, shows as a difference in some blob.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend_table.hpp"
#include "engine/net.hpp"
#include "io/yaml_config.hpp"
#include "layer_test_util.hpp"

namespace random_net {

using namespace crema;

// A random net's YAML, with "ENGINE" where each layer's engine goes ("BN_ENGINE" for
// BatchNorm's).
inline std::string make(uint64_t seed) {
  Rng rng(seed);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rng.below(static_cast<uint32_t>(hi - lo + 1))); };
  struct Top {
    std::string name;
    int c, h, w;
    int consumers = 0;
    bool view = false;    // a Reshape's top, sharing its bottom's values: never written in place
    bool shaped = false;  // Crop's shape reference: read, though it gets no gradient from there
    bool writable() const { return consumers == 0 && !view && !shaped; }
  };
  std::vector<Top> tops;
  const int n = pick(2, 3);
  tops.push_back({"data", pick(1, 4), pick(9, 16), pick(9, 16)});
  std::ostringstream y;
  y << "name: random\nlayer:\n- {name: data, type: Input, top: data, input_param: {shape: {dim: [" << n << ", "
    << tops[0].c << ", " << tops[0].h << ", " << tops[0].w << "]}}}\n"
    << "- {name: label, type: Input, top: label, input_param: {shape: {dim: [" << n << "]}}}\n";
  const std::string filler = "weight_filler: {type: gaussian, std: 0.3}, bias_filler: {type: gaussian, std: 0.1}";
  int layers = 0;
  auto fresh = [&](const char* kind) { return std::string(kind) + std::to_string(layers++); };
  // A top to read: the newest more often, so that the net grows deep as well as wide.
  auto any = [&]() -> Top& { return rng.below(2) ? tops.back() : tops[rng.below(static_cast<uint32_t>(tops.size()))]; };
  const int steps = pick(6, 12);
  for (int step = 0; step < steps; ++step) {
    Top& in = any();
    const std::string name = fresh("l");
    switch (rng.below(15)) {
      case 0:
      case 1: {  // Convolution, sometimes grouped, channels on and off the blocks of 8 and 16
        const int group = in.c % 2 == 0 && rng.below(3) == 0 ? 2 : 1;
        const int out = group * std::vector<int>{3, 4, 8, 16, 5}[rng.below(5)];
        // (pad at most half the kernel: a window wholly in the padding gives the bias alone,
        // and a MAX pooling later finds ties there that each engine's rounding breaks its way)
        const int k = pick(1, 3), pad = pick(0, k / 2), stride = in.h > 6 && in.w > 6 ? pick(1, 2) : 1;
        if (in.h + 2 * pad < k || in.w + 2 * pad < k) continue;
        y << "- {name: " << name << ", type: Convolution, bottom: " << in.name << ", top: " << name
          << ", convolution_param: {num_output: " << out << ", kernel_size: " << k << ", pad: " << pad
          << ", stride: " << stride << ", group: " << group << ", engine: ENGINE, " << filler << "}}\n";
        ++in.consumers;
        tops.push_back({name, out, (in.h + 2 * pad - k) / stride + 1, (in.w + 2 * pad - k) / stride + 1});
        break;
      }
      case 2: {  // Deconvolution doubling the size
        if (in.h > 12 || in.w > 12) continue;
        const int out = std::vector<int>{4, 8, 16}[rng.below(3)];
        y << "- {name: " << name << ", type: Deconvolution, bottom: " << in.name << ", top: " << name
          << ", convolution_param: {num_output: " << out << ", kernel_size: 2, stride: 2, engine: ENGINE, " << filler
          << (rng.below(2) ? ", bias_term: false" : "") << "}}\n";
        ++in.consumers;
        tops.push_back({name, out, 2 * in.h, 2 * in.w});
        break;
      }
      case 3: {  // Pooling
        if (in.h < 3 || in.w < 3) continue;
        const bool max = rng.below(2);
        const int k = pick(2, 3), stride = pick(1, 2);
        y << "- {name: " << name << ", type: Pooling, bottom: " << in.name << ", top: " << name
          << ", pooling_param: {pool: " << (max ? "MAX" : "AVE") << ", kernel_size: " << k << ", stride: " << stride
          << ", engine: ENGINE}}\n";
        ++in.consumers;
        auto pooled = [&](int size) { return (size - k + stride - 1) / stride + 1; };  // Caffe's ceil
        tops.push_back({name, in.c, pooled(in.h), pooled(in.w)});
        break;
      }
      case 4: {  // an activation, in place on a top nothing reads yet, else beside it
        const char* types[] = {"ReLU", "Sigmoid", "TanH"};
        const char* params[] = {"relu_param", "sigmoid_param", "tanh_param"};
        const uint32_t t = rng.below(3);
        const bool in_place = in.writable() && rng.below(2);
        const std::string top = in_place ? in.name : name;
        y << "- {name: " << name << ", type: " << types[t] << ", bottom: " << in.name << ", top: " << top << ", "
          << params[t] << ": {engine: ENGINE}}\n";
        if (!in_place) {
          ++in.consumers;
          tops.push_back({name, in.c, in.h, in.w});
        }
        break;
      }
      case 5: {  // LRN across channels
        y << "- {name: " << name << ", type: LRN, bottom: " << in.name << ", top: " << name
          << ", lrn_param: {local_size: " << (rng.below(2) ? 3 : 5) << ", alpha: 0.2, beta: 0.75, engine: ENGINE}}\n";
        ++in.consumers;
        tops.push_back({name, in.c, in.h, in.w});
        break;
      }
      case 6: {  // BatchNorm and Scale, in place where nothing reads the top yet
        const bool in_place = in.writable();
        const std::string top = in_place ? in.name : name;
        y << "- {name: " << name << "_bn, type: BatchNorm, bottom: " << in.name << ", top: " << top
          << ", batch_norm_param: {engine: BN_ENGINE}}\n"
          << "- {name: " << name << "_scale, type: Scale, bottom: " << top << ", top: " << top
          << ", scale_param: {bias_term: true, filler: {type: uniform, min: 0.5, max: 1.5}, "
             "bias_filler: {type: gaussian, std: 0.1}}}\n";
        if (!in_place) {
          ++in.consumers;
          tops.push_back({name, in.c, in.h, in.w});
        }
        break;
      }
      case 7:
      case 8: {  // Eltwise of two tops of one shape, else Concat of two of one size
        std::vector<size_t> same, joinable;
        for (size_t i = 0; i < tops.size(); ++i) {
          if (&tops[i] == &in) continue;
          if (tops[i].h == in.h && tops[i].w == in.w) joinable.push_back(i);
          if (tops[i].h == in.h && tops[i].w == in.w && tops[i].c == in.c) same.push_back(i);
        }
        if (!same.empty() && rng.below(3)) {
          Top& other = tops[same[rng.below(static_cast<uint32_t>(same.size()))]];
          const char* ops[] = {"SUM, coeff: [1, -0.5]", "PROD", "MAX"};
          y << "- {name: " << name << ", type: Eltwise, bottom: [" << in.name << ", " << other.name
            << "], top: " << name << ", eltwise_param: {operation: " << ops[rng.below(3)] << "}}\n";
          ++in.consumers;
          ++other.consumers;
          tops.push_back({name, in.c, in.h, in.w});
        } else if (!joinable.empty()) {
          Top& other = tops[joinable[rng.below(static_cast<uint32_t>(joinable.size()))]];
          y << "- {name: " << name << ", type: Concat, bottom: [" << in.name << ", " << other.name << "], top: " << name
            << "}\n";
          ++in.consumers;
          ++other.consumers;
          tops.push_back({name, in.c + other.c, in.h, in.w});
        }
        break;
      }
      case 9: {  // Crop to a smaller top's size
        std::vector<size_t> smaller;
        for (size_t i = 0; i < tops.size(); ++i)
          if (tops[i].h < in.h && tops[i].w < in.w) smaller.push_back(i);
        if (smaller.empty()) continue;
        Top& like = tops[smaller[rng.below(static_cast<uint32_t>(smaller.size()))]];
        y << "- {name: " << name << ", type: Crop, bottom: [" << in.name << ", " << like.name << "], top: " << name
          << ", crop_param: {axis: 2, offset: [" << (in.h - like.h) / 2 << ", " << (in.w - like.w) / 2 << "]}}\n";
        ++in.consumers;
        like.shaped = true;  // (it gets no gradient from the Crop, so it keeps a head of its own)
        tops.push_back({name, in.c, like.h, like.w});
        break;
      }
      case 10: {  // Slice along the channels into two tops
        if (in.c < 2) continue;
        const int at = pick(1, in.c - 1);
        y << "- {name: " << name << ", type: Slice, bottom: " << in.name << ", top: [" << name << "a, " << name
          << "b], slice_param: {axis: 1, slice_point: [" << at << "]}}\n";
        ++in.consumers;
        const Top a{name + "a", at, in.h, in.w}, b{name + "b", in.c - at, in.h, in.w};
        tops.push_back(a);
        tops.push_back(b);
        break;
      }
      case 11: {  // layers with a parameter per channel
        const uint32_t t = rng.below(3);
        if (t == 0)
          y << "- {name: " << name << ", type: PReLU, bottom: " << in.name << ", top: " << name
            << ", prelu_param: {filler: {type: uniform, min: 0.05, max: 0.5}}}\n";
        else if (t == 1)
          y << "- {name: " << name << ", type: Bias, bottom: " << in.name << ", top: " << name
            << ", bias_param: {axis: 1, num_axes: 1, filler: {type: gaussian, std: 0.5}}}\n";
        else
          y << "- {name: " << name << ", type: ELU, bottom: " << in.name << ", top: " << name
            << ", elu_param: {alpha: 0.7}}\n";
        ++in.consumers;
        tops.push_back({name, in.c, in.h, in.w});
        break;
      }
      case 12: {  // Reshape: the image's rows laid end to end
        y << "- {name: " << name << ", type: Reshape, bottom: " << in.name << ", top: " << name
          << ", reshape_param: {shape: {dim: [0, 0, -1, 1]}}}\n";
        ++in.consumers;
        tops.push_back({name, in.c, in.h * in.w, 1, 0, true, false});
        break;
      }
      default: {  // layers of the reference only, which read values plain
        if (rng.below(2))
          y << "- {name: " << name << ", type: Power, bottom: " << in.name << ", top: " << name
            << ", power_param: {scale: 0.8, shift: 0.25}}\n";
        else
          y << "- {name: " << name << ", type: AbsVal, bottom: " << in.name << ", top: " << name << "}\n";
        ++in.consumers;
        tops.push_back({name, in.c, in.h, in.w});
        break;
      }
    }
  }
  // Every top nothing reads goes to the loss through an InnerProduct of its own, so
  // that each branch gets a gradient; their sum (or the one) is the blob "score".
  std::vector<const Top*> heads;
  for (const Top& t : tops)
    if (t.consumers == 0) heads.push_back(&t);
  std::string scores;
  for (const Top* t : heads) {
    const std::string name = heads.size() == 1 ? "score" : fresh("ip");
    y << "- {name: " << fresh("head") << ", type: InnerProduct, bottom: " << t->name << ", top: " << name
      << ", inner_product_param: {num_output: 5, weight_filler: {type: gaussian, std: 0.05}}}\n";
    scores += (scores.empty() ? "" : ", ") + name;
  }
  if (heads.size() > 1) y << "- {name: score, type: Eltwise, bottom: [" << scores << "], top: score}\n";
  y << "- {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss}\n";
  return y.str();
}

// A net built from `yaml` with `engine` for its "ENGINE"s and `bn_engine` (by default
// `engine`) for its "BN_ENGINE"s, on `context`. (The CPU's DEFAULT runs BatchNorm on the
// reference, so oneDNN's is asked for by name.)
struct BuiltNet {
  std::unique_ptr<Node> root;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Net> net;
  BuiltNet(std::string yaml, const std::string& engine, Phase phase, std::unique_ptr<Context> context,
           std::string bn_engine = {})
      : ctx(std::move(context)) {
    if (bn_engine.empty()) bn_engine = engine;
    for (size_t at; (at = yaml.find("BN_ENGINE")) != std::string::npos;) yaml.replace(at, 9, bn_engine);
    for (size_t at; (at = yaml.find("ENGINE")) != std::string::npos;) yaml.replace(at, 6, engine);
    root = std::make_unique<Node>(io::parse_yaml(yaml, "random.yaml"));
    net = std::make_unique<Net>(NetSpec::parse(*root), NetState{phase, 0, {}}, *ctx, /*quiet=*/true);
  }
};

inline void copy_params(const Net& from, Net& to) {
  REQUIRE(from.num_layers() == to.num_layers());
  for (int l = 0; l < from.num_layers(); ++l)
    for (size_t i = 0; i < from.layer(l).blobs().size(); ++i)
      to.layer(l).blobs()[i]->copy_from(*from.layer(l).blobs()[i]);
}

// The Input blobs "data" (gaussian) and "label" (classes 0 to 4), drawn from `seed`.
inline void fill_inputs(Net& net, uint64_t seed) {
  Rng rng(seed);
  test::fill_gaussian(*net.blob("data"), rng);
  Blob& labels = *net.blob("label");
  float* label = labels.mutable_cpu_data();
  for (int i = 0; i < labels.count(); ++i) label[i] = static_cast<float>((seed + static_cast<uint64_t>(i) * 2) % 5);
}

// One forward and backward of each net from the same inputs, from zeroed parameter
// gradients.
inline void train_pass(std::initializer_list<BuiltNet*> nets, uint64_t seed) {
  for (BuiltNet* b : nets) {
    fill_inputs(*b->net, seed);
    b->net->clear_param_diffs();
    b->net->forward_backward(*b->ctx);
  }
}

// How far `got` may be from `want`: values and gradients by normalised error (an
// absolute bound for values under 1), and the blobs' gradients also by relative L2 error
// (they are small here, where the absolute bound alone would pass even a gradient lost
// altogether; not the parameters': a bias before a BatchNorm has a gradient of zero in
// exact arithmetic, rounding noise of no size to compare relatively).
struct Bounds {
  double values, gradients, gradients_l2;
};

// Every blob's value (the inputs' values only), every blob's gradient and every
// parameter's gradient of `got` within `bounds` of `want`'s.
inline void check_agree(const Net& want, const Net& got, const Bounds& bounds) {
  using backend_table::normalised_error;
  using backend_table::relative_l2;
  using backend_table::values;
  const auto check_gradient = [&](const Blob& a, const Blob& b, bool relative) {
    const std::vector<float> x = values(a.cpu_diff(), a.count()), y = values(b.cpu_diff(), b.count());
    CHECK(normalised_error(x, y) <= bounds.gradients);
    if (relative) CHECK(relative_l2(x, y) <= bounds.gradients_l2);
  };
  for (const std::string& name : want.blob_names()) {
    INFO(name);
    const Blob& a = *want.blob(name);
    const Blob& b = *got.blob(name);
    REQUIRE(a.shape() == b.shape());
    CHECK(normalised_error(values(a.cpu_data(), a.count()), values(b.cpu_data(), b.count())) <= bounds.values);
    if (name != "data" && name != "label") check_gradient(a, b, true);
  }
  const auto& a = want.learnable_params();
  const auto& b = got.learnable_params();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(want.param_owner(i));
    check_gradient(*a[i], *b[i], false);
  }
}

// A TEST net's scores and loss (the blobs a forward-only net sharing activation memory
// keeps) within `tolerance` of the reference's, by normalised error.
inline void check_scores_agree(const Net& want, const Net& got, double tolerance) {
  using backend_table::normalised_error;
  using backend_table::values;
  for (const char* name : {"score", "loss"}) {
    INFO(name);
    const Blob& a = *want.blob(name);
    const Blob& b = *got.blob(name);
    CHECK(normalised_error(values(a.cpu_data(), a.count()), values(b.cpu_data(), b.count())) <= tolerance);
  }
}

// Random nets 1 to `nets`, each layer's DEFAULT engine (BatchNorm's `bn_engine`) on
// contexts from `make_context`, against the plain CPU reference from the same parameters
// and inputs: two TRAIN passes, every blob and parameter gradient within `bounds`; then a
// TEST net, sharing activation memory, on the running statistics those passes left, its
// scores and loss within `bounds.values`. Returns how many blobs the TRAIN passes left in
// a layout of oneDNN's.
inline int check_against_reference(const std::function<std::unique_ptr<Context>()>& make_context,
                                   const std::string& bn_engine, const Bounds& bounds, int nets) {
  int blocked = 0;
  for (uint64_t seed = 1; seed <= static_cast<uint64_t>(nets); ++seed) {
    const std::string yaml = make(seed);
    INFO("net " << seed << ":\n" << yaml);
    BuiltNet got(yaml, "DEFAULT", Phase::TRAIN, make_context(), bn_engine);
    BuiltNet reference(yaml, "CAFFE", Phase::TRAIN, std::make_unique<Context>(5));
    copy_params(*got.net, *reference.net);
    for (uint64_t pass : {1u, 2u}) {
      CAPTURE(pass);
      train_pass({&got, &reference}, seed * 10 + pass);
      for (const std::string& name : got.net->blob_names())
        if (got.net->blob(name)->data_memory()->layout() != nullptr) ++blocked;
      check_agree(*reference.net, *got.net, bounds);
    }
    BuiltNet shared(yaml, "DEFAULT", Phase::TEST, make_context(), bn_engine);
    BuiltNet plain(yaml, "CAFFE", Phase::TEST, std::make_unique<Context>(5));
    copy_params(*got.net, *shared.net);
    copy_params(*got.net, *plain.net);
    shared.net->reuse_activation_memory();  // as the test nets of training and `crema test` do
    fill_inputs(*shared.net, seed * 10 + 3);
    fill_inputs(*plain.net, seed * 10 + 3);
    plain.net->forward(*plain.ctx);
    shared.net->forward(*shared.ctx);
    check_scores_agree(*plain.net, *shared.net, bounds.values);
  }
  return blocked;
}

}  // namespace random_net
