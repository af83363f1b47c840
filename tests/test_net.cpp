// Net construction: layer selection rules, split insertion, in-place layers,
// shared parameters and the backward bookkeeping (force_backward, loss_weight,
// propagate_down, lr_mult 0, layers outside every loss). Gradients are compared
// with central differences of the net's total loss.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/net.hpp"
#include "io/yaml_config.hpp"
#include "net_test_util.hpp"

using namespace crema;
using test::numeric_derivative;

namespace {

struct Built {
  std::unique_ptr<Node> root;
  NetSpec spec;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Net> net;
};

std::unique_ptr<Built> build(const std::string& yaml, const NetState& state = NetState{Phase::TRAIN, 0, {}},
                             long long seed = 1701) {
  auto b = std::make_unique<Built>();
  b->root = std::make_unique<Node>(io::parse_yaml(yaml, "net.yaml"));
  b->spec = NetSpec::parse(*b->root);
  b->ctx = std::make_unique<Context>(seed);
  b->net = std::make_unique<Net>(b->spec, state, *b->ctx, /*quiet=*/true);
  return b;
}

int index_of(const Net& net, const std::string& name) {
  for (int i = 0; i < net.num_layers(); ++i)
    if (net.layer_name(i) == name) return i;
  FAIL_CHECK("no layer named " << name);
  return -1;
}

void fill_random(Blob& b, uint64_t seed) {
  Rng rng(seed);
  for (int i = 0; i < b.count(); ++i) b.mutable_cpu_data()[i] = rng.uniform(-1.f, 1.f);
}

// Fills the named input blobs with fill_random, the k-th from seed first_seed + k,
// clears the parameter gradients and runs forward and backward once; returns the loss.
float forward_backward_on_random(Built& b, const std::vector<std::string>& inputs, uint64_t first_seed) {
  for (size_t k = 0; k < inputs.size(); ++k) fill_random(*b.net->blob(inputs[k]), first_seed + k);
  b.net->clear_param_diffs();
  return b.net->forward_backward(*b.ctx);
}

std::vector<float> diff_of(const Blob& b) { return {b.cpu_diff(), b.cpu_diff() + b.count()}; }

void check_against_numeric(Net& net, Context& ctx, Blob& b, const std::vector<float>& analytic,
                           const std::string& what) {
  REQUIRE(static_cast<int>(analytic.size()) == b.count());
  for (int i = 0; i < b.count(); ++i) {
    const double num = numeric_derivative(net, ctx, b, i);
    const double an = analytic[static_cast<size_t>(i)];
    INFO(what << " element " << i << ": analytic " << an << ", numeric " << num);
    CHECK(std::fabs(an - num) <= 2e-3 * std::max(1.0, std::fabs(num)));
  }
}

bool all_zero(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.f; });
}

LayerSpec layer_spec(const std::string& yaml, std::shared_ptr<Node>& keep) {
  keep = std::make_shared<Node>(io::parse_yaml(yaml, "layer.yaml"));
  return parse_layer_spec(*keep);
}

LayerSpec simple(const std::string& name, const std::string& type, std::vector<std::string> bottom,
                 std::vector<std::string> top) {
  LayerSpec s;
  s.name = name;
  s.type = type;
  s.bottom = std::move(bottom);
  s.top = std::move(top);
  return s;
}

}  // namespace

TEST_CASE("net: rule_matches checks phase, min_level, max_level, stage and not_stage") {
  const NetState train{Phase::TRAIN, 0, {}};
  const NetState test{Phase::TEST, 0, {}};
  NetStateRule empty;
  CHECK(rule_matches(empty, train));
  CHECK(rule_matches(empty, test));

  NetStateRule phase;
  phase.phase = Phase::TEST;
  CHECK_FALSE(rule_matches(phase, train));
  CHECK(rule_matches(phase, test));

  NetStateRule levels;
  levels.min_level = 2;
  levels.max_level = 4;
  CHECK_FALSE(rule_matches(levels, NetState{Phase::TRAIN, 1, {}}));
  CHECK(rule_matches(levels, NetState{Phase::TRAIN, 2, {}}));
  CHECK(rule_matches(levels, NetState{Phase::TRAIN, 4, {}}));
  CHECK_FALSE(rule_matches(levels, NetState{Phase::TRAIN, 5, {}}));

  NetStateRule stages;
  stages.stage = {"a", "b"};
  CHECK_FALSE(rule_matches(stages, NetState{Phase::TRAIN, 0, {"a"}}));
  CHECK(rule_matches(stages, NetState{Phase::TRAIN, 0, {"b", "c", "a"}}));

  NetStateRule not_stage;
  not_stage.not_stage = {"deploy"};
  CHECK(rule_matches(not_stage, NetState{Phase::TRAIN, 0, {"x"}}));
  CHECK_FALSE(rule_matches(not_stage, NetState{Phase::TRAIN, 0, {"x", "deploy"}}));

  // Every condition of one rule must hold.
  NetStateRule all;
  all.phase = Phase::TRAIN;
  all.min_level = 1;
  all.stage = {"s"};
  CHECK(rule_matches(all, NetState{Phase::TRAIN, 1, {"s"}}));
  CHECK_FALSE(rule_matches(all, NetState{Phase::TEST, 1, {"s"}}));
  CHECK_FALSE(rule_matches(all, NetState{Phase::TRAIN, 0, {"s"}}));
  CHECK_FALSE(rule_matches(all, NetState{Phase::TRAIN, 1, {}}));
}

TEST_CASE("net: layer_included: any include rule admits, any exclude rule removes") {
  std::shared_ptr<Node> keep;
  const LayerSpec none = layer_spec("{name: l, type: ReLU}", keep);
  CHECK(layer_included(none, NetState{Phase::TEST, 3, {"x"}}));

  std::shared_ptr<Node> k1;
  const LayerSpec inc = layer_spec("{name: l, type: ReLU, include: [{phase: TEST}, {stage: deploy}]}", k1);
  REQUIRE(inc.include.size() == 2);
  CHECK(layer_included(inc, NetState{Phase::TEST, 0, {}}));
  CHECK(layer_included(inc, NetState{Phase::TRAIN, 0, {"deploy"}}));
  CHECK_FALSE(layer_included(inc, NetState{Phase::TRAIN, 0, {}}));

  std::shared_ptr<Node> k2;
  const LayerSpec exc = layer_spec("{name: l, type: ReLU, exclude: [{phase: TEST}, {max_level: 1}]}", k2);
  CHECK_FALSE(layer_included(exc, NetState{Phase::TEST, 5, {}}));
  CHECK_FALSE(layer_included(exc, NetState{Phase::TRAIN, 1, {}}));
  CHECK(layer_included(exc, NetState{Phase::TRAIN, 2, {}}));

  std::shared_ptr<Node> k3;
  CHECK_THROWS_WITH_AS(layer_spec("{name: l, type: ReLU, include: {phase: TEST}, exclude: {phase: TRAIN}}", k3),
                       doctest::Contains("include rules or exclude rules, not both"), ConfigError);
}

TEST_CASE("net: include and exclude rules select the layers of a Net") {
  const std::string yaml =
      "name: rules\n"
      "layer:\n"
      "- {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
      "- {name: train_only, type: ReLU, bottom: data, top: data, include: {phase: TRAIN}}\n"
      "- {name: test_only, type: ReLU, bottom: data, top: data, include: {phase: TEST}}\n"
      "- {name: staged, type: ReLU, bottom: data, top: data, include: {stage: extra}}\n"
      "- {name: not_deploy, type: ReLU, bottom: data, top: data, include: {not_stage: deploy}}\n"
      "- {name: high, type: ReLU, bottom: data, top: data, include: {min_level: 2}}\n"
      "- {name: low, type: ReLU, bottom: data, top: data, include: {max_level: 0}}\n"
      "- {name: not_test, type: ReLU, bottom: data, top: data, exclude: {phase: TEST}}\n";
  auto names = [&](const NetState& s) {
    auto b = build(yaml, s);
    std::vector<std::string> out;
    for (int i = 0; i < b->net->num_layers(); ++i) out.push_back(b->net->layer_name(i));
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names(NetState{Phase::TRAIN, 0, {}}) == V{"data", "train_only", "not_deploy", "low", "not_test"});
  CHECK(names(NetState{Phase::TEST, 0, {}}) == V{"data", "test_only", "not_deploy", "low"});
  CHECK(names(NetState{Phase::TRAIN, 2, {"extra", "deploy"}}) == V{"data", "train_only", "staged", "high", "not_test"});
  CHECK(names(NetState{Phase::TEST, 1, {"deploy"}}) == V{"data", "test_only"});
}

TEST_CASE("net: a bottom only a left-out layer makes names that layer and the net's state") {
  const std::string yaml =
      "name: staged\n"
      "layer:\n"
      "- {name: input, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}, include: {stage: val}}\n"
      "- {name: relu, type: ReLU, bottom: data, top: r}\n";
  // A misspelt --stage: once only "not produced by any earlier layer".
  CHECK_THROWS_WITH_AS(build(yaml, NetState{Phase::TEST, 0, {"vla"}}),
                       doctest::Contains("bottom 'data' is not produced by any earlier layer in the TEST net: layer "
                                         "'input' (net.yaml:3:3) makes it, but its include/exclude rules leave it out "
                                         "of this net (phase TEST, level 0, stages [vla])"),
                       ConfigError);
  CHECK_NOTHROW(build(yaml, NetState{Phase::TEST, 0, {"val"}}));
}

TEST_CASE("net: insert_splits adds a Split after a top consumed twice, with Caffe's names") {
  const std::vector<LayerSpec> in = {
      simple("data", "Input", {}, {"data", "label"}),
      simple("ip1", "InnerProduct", {"data"}, {"ip1"}),
      simple("ip2", "InnerProduct", {"data"}, {"ip2"}),
      simple("loss", "EuclideanLoss", {"ip1", "label"}, {"loss"}),
  };
  const auto out = insert_splits(in);
  REQUIRE(out.size() == 5);
  CHECK(out[0].name == "data");
  CHECK(out[1].name == "data_data_0_split");
  CHECK(out[1].type == "Split");
  CHECK(out[1].bottom == std::vector<std::string>{"data"});
  CHECK(out[1].top == std::vector<std::string>{"data_data_0_split_0", "data_data_0_split_1"});
  CHECK(out[2].bottom == std::vector<std::string>{"data_data_0_split_0"});
  CHECK(out[3].bottom == std::vector<std::string>{"data_data_0_split_1"});
  // label is used once: no split.
  CHECK(out[4].bottom == std::vector<std::string>{"ip1", "label"});

  // After an in-place layer the split follows the last producer of the name.
  const std::vector<LayerSpec> inplace = {
      simple("in", "Input", {}, {"x"}),
      simple("relu", "ReLU", {"x"}, {"x"}),
      simple("a", "InnerProduct", {"x"}, {"a"}),
      simple("b", "InnerProduct", {"x"}, {"b"}),
      simple("c", "InnerProduct", {"x"}, {"c"}),
  };
  const auto out2 = insert_splits(inplace);
  REQUIRE(out2.size() == 6);
  CHECK(out2[1].bottom == std::vector<std::string>{"x"});  // the ReLU still reads the Input's x
  CHECK(out2[2].name == "x_relu_0_split");
  CHECK(out2[2].top.size() == 3);
  CHECK(out2[3].bottom == std::vector<std::string>{"x_relu_0_split_0"});
  CHECK(out2[4].bottom == std::vector<std::string>{"x_relu_0_split_1"});
  CHECK(out2[5].bottom == std::vector<std::string>{"x_relu_0_split_2"});
}

TEST_CASE("net: insert_splits moves the loss weight of a consumed top onto the split's first output") {
  std::vector<LayerSpec> in = {
      simple("in", "Input", {}, {"x"}),
      simple("ip", "InnerProduct", {"x"}, {"out"}),
      simple("relu", "ReLU", {"out"}, {"r"}),
  };
  in[1].loss_weight = {1.5f};
  const auto out = insert_splits(in);
  REQUIRE(out.size() == 4);
  CHECK(out[1].loss_weight == std::vector<float>{0.f});
  CHECK(out[2].name == "out_ip_0_split");
  CHECK(out[2].top == std::vector<std::string>{"out_ip_0_split_0", "out_ip_0_split_1"});
  CHECK(out[2].loss_weight == std::vector<float>{1.5f, 0.f});
  CHECK(out[3].bottom == std::vector<std::string>{"out_ip_0_split_1"});
}

TEST_CASE("net: the gradient reaching a blob used by two layers is the sum of both") {
  auto b = build(
      "name: split\n"
      "force_backward: true\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, t1, t2], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}, {dim: [2, 4]}]}}\n"
      "- {name: ip1, type: InnerProduct, bottom: data, top: p1, inner_product_param: {num_output: 2,"
      " weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}\n"
      "- {name: ip2, type: InnerProduct, bottom: data, top: p2, inner_product_param: {num_output: 4,"
      " weight_filler: {type: gaussian}}}\n"
      "- {name: loss1, type: EuclideanLoss, bottom: [p1, t1], top: l1}\n"
      "- {name: loss2, type: EuclideanLoss, bottom: [p2, t2], top: l2, loss_weight: 0.5}\n");
  Net& net = *b->net;
  REQUIRE(net.num_layers() == 6);
  CHECK(net.layer_name(1) == "data_input_0_split");
  CHECK(std::string(net.layer(1).type()) == "Split");
  CHECK(net.bottom_vec(index_of(net, "ip1"))[0] == net.blob("data_input_0_split_0"));
  CHECK(net.bottom_vec(index_of(net, "ip2"))[0] == net.blob("data_input_0_split_1"));
  forward_backward_on_random(*b, {"data", "t1", "t2"}, 1);
  const auto data_diff = diff_of(*net.blob("data"));
  // Hand check of the sum: each branch alone gives W1ᵀ dp1 and 0.5 W2ᵀ dp2.
  const auto s0 = diff_of(*net.blob("data_input_0_split_0"));
  const auto s1 = diff_of(*net.blob("data_input_0_split_1"));
  for (size_t i = 0; i < data_diff.size(); ++i) CHECK(data_diff[i] == doctest::Approx(s0[i] + s1[i]));
  CHECK_FALSE(all_zero(s0));
  CHECK_FALSE(all_zero(s1));
  check_against_numeric(net, *b->ctx, *net.blob("data"), data_diff, "data");
}

TEST_CASE("net: an in-place ReLU shares its blob and back-propagates correctly") {
  auto b = build(
      "name: inplace\n"
      "force_backward: true\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [3, 4]}, {dim: [3, 5]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: h, inner_product_param: {num_output: 5,"
      " weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}\n"
      "- {name: relu, type: ReLU, bottom: h, top: h}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [h, t], top: loss}\n");
  Net& net = *b->net;
  const int relu = index_of(net, "relu");
  REQUIRE(net.num_layers() == 4);  // no split: h is consumed once after the ReLU
  CHECK(net.top_vec(relu)[0] == net.bottom_vec(relu)[0]);
  CHECK(net.top_vec(relu)[0] == net.blob("h"));
  CHECK(std::count(net.blob_names().begin(), net.blob_names().end(), "h") == 1);
  forward_backward_on_random(*b, {"data", "t"}, 4);
  const Blob& h = *net.blob("h");
  int zeros = 0;
  for (int i = 0; i < h.count(); ++i) {
    CHECK(h.cpu_data()[i] >= 0.f);
    zeros += h.cpu_data()[i] == 0.f;
  }
  CHECK(zeros > 0);  // some pre-activations were negative, so the ReLU mattered
  const auto data_diff = diff_of(*net.blob("data"));
  Blob& w = *net.layer_by_name("ip")->blobs()[0];
  const auto w_diff = diff_of(w);
  check_against_numeric(net, *b->ctx, *net.blob("data"), data_diff, "data");
  check_against_numeric(net, *b->ctx, w, w_diff, "ip weight");
}

TEST_CASE("net: a layer that cannot run in place is refused by name when its top is its bottom") {
  // Each would overwrite the input its own backward needs (or change its shape): Caffe
  // trains such a net with wrong gradients.
  const std::vector<std::pair<std::string, std::string>> layers = {
      {"Convolution", "convolution_param: {num_output: 2, kernel_size: 1}"},
      {"InnerProduct", "inner_product_param: {num_output: 2}"},
      {"Pooling", "pooling_param: {pool: MAX, kernel_size: 1}"},
      {"LRN", "lrn_param: {local_size: 1}"},
  };
  for (const auto& [type, params] : layers) {
    CAPTURE(type);
    const std::string yaml =
        "name: inplace\n"
        "layer:\n"
        "- {name: input, type: Input, top: data, input_param: {shape: [{dim: [2, 3, 4, 4]}]}}\n"
        "- {name: bad, type: " + type + ", bottom: data, top: data, " + params + "}\n";
    const std::string expected = "(bad): " + type + " cannot run in place";
    CHECK_THROWS_WITH_AS(build(yaml), doctest::Contains(expected.c_str()), ConfigError);
  }
  // One top name given twice in a layer: not "produced by another layer".
  CHECK_THROWS_WITH_AS(build("name: twice\n"
                             "layer:\n"
                             "- {name: input, type: Input, top: data, input_param: {shape: [{dim: [2, 6]}]}}\n"
                             "- {name: cut, type: Slice, bottom: data, top: [a, a, b], slice_param: {axis: 1}}\n"),
                       doctest::Contains("top 'a' is named twice in this layer's tops"), ConfigError);
  // A loss whose top is its score bottom: the same message, not a shape error.
  CHECK_THROWS_WITH_AS(build("name: inplace\n"
                             "layer:\n"
                             "- {name: input, type: Input, top: [s, label], input_param: {shape: [{dim: [2, 3]}, "
                             "{dim: [2]}]}}\n"
                             "- {name: loss, type: SoftmaxWithLoss, bottom: [s, label], top: s}\n"),
                       doctest::Contains("SoftmaxWithLoss cannot run in place"), ConfigError);
  // The layers that may: element-wise ones, Scale, Bias, Softmax and BatchNorm.
  auto ok = build(
      "name: inplace\n"
      "layer:\n"
      "- {name: input, type: Input, top: data, input_param: {shape: [{dim: [2, 3, 4, 4]}]}}\n"
      "- {name: bn, type: BatchNorm, bottom: data, top: data}\n"
      "- {name: scale, type: Scale, bottom: data, top: data, scale_param: {bias_term: true}}\n"
      "- {name: bias, type: Bias, bottom: data, top: data}\n"
      "- {name: relu, type: ReLU, bottom: data, top: data}\n"
      "- {name: drop, type: Dropout, bottom: data, top: data}\n"
      "- {name: softmax, type: Softmax, bottom: data, top: data}\n",
      NetState{Phase::TEST, 0, {}});
  CHECK(ok->net->num_layers() == 7);
}

TEST_CASE("net: another type's parameter block on a layer says which block the layer reads") {
  const std::string head =
      "name: blocks\n"
      "layer:\n"
      "- {name: input, type: Input, top: data, input_param: {shape: [{dim: [2, 3, 4, 4]}]}}\n";
  // pooling_param on an InnerProduct layer (a type changed, its block left): once just "unknown key".
  CHECK_THROWS_WITH_AS(build(head + "- {name: fc, type: InnerProduct, bottom: data, top: fc, inner_product_param: "
                                    "{num_output: 2}, pooling_param: {pool: MAX}}\n"),
                       doctest::Contains("layer[1].pooling_param: 'pooling_param' is not a parameter block of "
                                         "InnerProduct layers; InnerProduct reads inner_product_param (check the "
                                         "layer's type"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(head + "- {name: s, type: Sigmoid, bottom: data, top: s, relu_param: {}}\n"),
                       doctest::Contains("'relu_param' is not a parameter block of Sigmoid layers"), ConfigError);
  // A misspelt block of the layer's own still gets its suggestion.
  CHECK_THROWS_WITH_AS(build(head + "- {name: p, type: Pooling, bottom: data, top: p, pooling_param: {kernel_size: 2}, "
                                    "pooling_parm: {pool: MAX}}\n"),
                       doctest::Contains("unknown key 'pooling_parm' (did you mean 'pooling_param'?)"), ConfigError);
}

TEST_CASE("net: parameters shared by name are one blob whose gradient sums both uses") {
  auto b = build(
      "name: share\n"
      "layer:\n"
      "- {name: input, type: Input, top: [a, c, ta, tc], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 3]},"
      " {dim: [2, 2]}, {dim: [2, 2]}]}}\n"
      "- {name: ip_a, type: InnerProduct, bottom: a, top: pa, param: [{name: w}, {name: bias}],"
      " inner_product_param: {num_output: 2, weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}\n"
      "- {name: ip_c, type: InnerProduct, bottom: c, top: pc, param: [{name: w}, {name: bias}],"
      " inner_product_param: {num_output: 2, weight_filler: {type: gaussian}}}\n"
      "- {name: loss_a, type: EuclideanLoss, bottom: [pa, ta], top: la}\n"
      "- {name: loss_c, type: EuclideanLoss, bottom: [pc, tc], top: lc}\n");
  Net& net = *b->net;
  Layer& ip_a = *net.layer_by_name("ip_a");
  Layer& ip_c = *net.layer_by_name("ip_c");
  CHECK(ip_a.blobs()[0].get() == ip_c.blobs()[0].get());
  CHECK(ip_a.blobs()[1].get() == ip_c.blobs()[1].get());
  CHECK(net.learnable_params().size() == 2);
  CHECK(net.learnable_params()[0] == ip_a.blobs()[0].get());
  CHECK_FALSE(net.param_is_shared(index_of(net, "ip_a"), 0));
  CHECK(net.param_is_shared(index_of(net, "ip_c"), 0));
  CHECK(net.param_is_shared(index_of(net, "ip_c"), 1));
  CHECK(net.num_parameters() == 2 * 3 + 2);

  forward_backward_on_random(*b, {"a", "c", "ta", "tc"}, 6);
  Blob& w = *ip_a.blobs()[0];
  Blob& bias = *ip_a.blobs()[1];
  const auto w_diff = diff_of(w), b_diff = diff_of(bias);
  // By hand for the bias: the sum over both losses of (p - t) / N, N = 2.
  const Blob &pa = *net.blob("pa"), &pc = *net.blob("pc"), &ta = *net.blob("ta"), &tc = *net.blob("tc");
  for (int o = 0; o < 2; ++o) {
    double want = 0;
    for (int n = 0; n < 2; ++n)
      want += (pa.cpu_data()[n * 2 + o] - ta.cpu_data()[n * 2 + o] + pc.cpu_data()[n * 2 + o] - tc.cpu_data()[n * 2 + o]) / 2.0;
    CHECK(b_diff[static_cast<size_t>(o)] == doctest::Approx(want).epsilon(1e-4));
  }
  check_against_numeric(net, *b->ctx, w, w_diff, "shared weight");
  check_against_numeric(net, *b->ctx, bias, b_diff, "shared bias");

  // Sharing only the weight: three learnable parameters.
  auto b2 = build(
      "name: share\n"
      "layer:\n"
      "- {name: input, type: Input, top: [a, c], input_param: {shape: {dim: [2, 3]}}}\n"
      "- {name: ip_a, type: InnerProduct, bottom: a, top: pa, param: {name: w}, inner_product_param: {num_output: 2}}\n"
      "- {name: ip_c, type: InnerProduct, bottom: c, top: pc, param: {name: w}, inner_product_param: {num_output: 2}}\n");
  CHECK(b2->net->learnable_params().size() == 3);
  CHECK(b2->net->layer_by_name("ip_a")->blobs()[1].get() != b2->net->layer_by_name("ip_c")->blobs()[1].get());
}

TEST_CASE("net: a shared parameter with another shape is an error") {
  const std::string mismatched =
      "name: share\n"
      "layer:\n"
      "- {name: input, type: Input, top: [a, c], input_param: {shape: {dim: [2, 3]}}}\n"
      "- {name: ip_a, type: InnerProduct, bottom: a, top: pa, param: {name: w}, inner_product_param: {num_output: 2}}\n"
      "- {name: ip_c, type: InnerProduct, bottom: c, top: pc, param: {name: w}, inner_product_param: {num_output: 3}}\n";
  CHECK_THROWS_WITH_AS(build(mismatched), doctest::Contains("shared parameter 'w'"), ConfigError);
  CHECK_THROWS_WITH_AS(build(mismatched), doctest::Contains("in layer 'ip_a'"), ConfigError);
  // More param entries than parameter blobs.
  CHECK_THROWS_AS(build("name: n\n"
                        "layer:\n"
                        "- {name: input, type: Input, top: a, input_param: {shape: {dim: [2, 3]}}}\n"
                        "- {name: relu, type: ReLU, bottom: a, top: a, param: {lr_mult: 2}}\n"),
                  ConfigError);
}

TEST_CASE("net: a shared parameter takes a sharer's lr_mult/decay_mult as Caffe does, two written ones must agree") {
  const auto net_with = [](const std::string& first, const std::string& second) {
    return "name: share\n"
           "layer:\n"
           "- {name: input, type: Input, top: [a, c], input_param: {shape: {dim: [2, 3]}}}\n"
           "- {name: ip_a, type: InnerProduct, bottom: a, top: pa, param: {name: w" + first +
           "}, inner_product_param: {num_output: 2}}\n"
           "- {name: ip_c, type: InnerProduct, bottom: c, top: pc, param: {name: w" + second +
           "}, inner_product_param: {num_output: 2}}\n";
  };
  // The owner left them at the defaults: the sharer's freeze applies to the one blob,
  // in both layers (no gradient computed for it anywhere).
  auto frozen = build(net_with("", ", lr_mult: 0, decay_mult: 0"));
  Net& net = *frozen->net;
  REQUIRE(net.learnable_params().size() == 3);
  CHECK(net.params_lr()[0] == 0.f);
  CHECK(net.params_decay()[0] == 0.f);
  CHECK_FALSE(net.layer_by_name("ip_a")->param_propagate_down(0));
  CHECK_FALSE(net.layer_by_name("ip_c")->param_propagate_down(0));
  CHECK(net.layer_by_name("ip_a")->param_propagate_down(1));  // the biases are not shared
  // Written once, on the owner: the same.
  auto owner = build(net_with(", lr_mult: 0.5", ""));
  CHECK(owner->net->params_lr()[0] == 0.5f);
  // Written on both and equal: fine; different: refused, naming both values.
  CHECK(build(net_with(", lr_mult: 2", ", lr_mult: 2"))->net->params_lr()[0] == 2.f);
  CHECK_THROWS_WITH_AS(build(net_with(", lr_mult: 1", ", lr_mult: 0")),
                       doctest::Contains("shared parameter 'w' has lr_mult 0 here but 1"), ConfigError);
  CHECK_THROWS_WITH_AS(build(net_with(", decay_mult: 1", ", decay_mult: 2")), doctest::Contains("decay_mult 2"),
                       ConfigError);
}

TEST_CASE("net: share_mode PERMISSIVE shares a parameter of equal count and another shape") {
  const std::string yaml =
      "name: share\n"
      "layer:\n"
      "- {name: input, type: Input, top: [a, c], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
      "- {name: ip_a, type: InnerProduct, bottom: a, top: pa, param: {name: w},"
      " inner_product_param: {num_output: 2, weight_filler: {type: gaussian}}}\n"
      "- {name: ip_c, type: InnerProduct, bottom: c, top: pc, param: {name: w, share_mode: PERMISSIVE},"
      " inner_product_param: {num_output: 3}}\n";
  auto b = build(yaml);
  Net& net = *b->net;
  const Blob& wa = *net.layer_by_name("ip_a")->blobs()[0];
  const Blob& wc = *net.layer_by_name("ip_c")->blobs()[0];
  CHECK(wa.shape() == std::vector<int>{2, 3});
  CHECK(wc.shape() == std::vector<int>{3, 2});
  CHECK(wa.cpu_data() == wc.cpu_data());  // one buffer
  CHECK(net.learnable_params().size() == 3);
  CHECK(net.param_is_shared(index_of(net, "ip_c"), 0));
  // STRICT (the default) names the way out.
  std::string strict = yaml;
  strict.replace(strict.find(", share_mode: PERMISSIVE"), 24, "");
  CHECK_THROWS_WITH_AS(build(strict), doctest::Contains("share_mode: PERMISSIVE"), ConfigError);
}

TEST_CASE("net: force_backward computes the gradient of the inputs") {
  const std::string layers =
      "layer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: p, inner_product_param: {num_output: 2,"
      " weight_filler: {type: gaussian}}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss}\n";
  auto plain = build("name: n\n" + layers);
  auto forced = build("name: n\nforce_backward: true\n" + layers);
  for (auto* b : {plain.get(), forced.get()}) {
    b->net->blob("data")->set_diff(7.f);  // a sentinel: nothing should overwrite it without force_backward
    forward_backward_on_random(*b, {"data", "t"}, 10);
  }
  CHECK_FALSE(plain->net->layer_needs_backward(0));
  CHECK(plain->net->layer_needs_backward(1));
  const auto untouched = diff_of(*plain->net->blob("data"));
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](float x) { return x == 7.f; }));
  // The parameters get gradients either way, and the same ones.
  const auto wp = diff_of(*plain->net->layer_by_name("ip")->blobs()[0]);
  const auto wf = diff_of(*forced->net->layer_by_name("ip")->blobs()[0]);
  CHECK_FALSE(all_zero(wp));
  for (size_t i = 0; i < wp.size(); ++i) CHECK(wp[i] == doctest::Approx(wf[i]));
  const auto forced_diff = diff_of(*forced->net->blob("data"));
  check_against_numeric(*forced->net, *forced->ctx, *forced->net->blob("data"), forced_diff, "data");
}

TEST_CASE("net: loss_weight 2 doubles the reported loss and every gradient") {
  auto make = [](const std::string& weight) {
    return build("name: n\n"
                 "force_backward: true\n"
                 "layer:\n"
                 "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
                 "- {name: ip, type: InnerProduct, bottom: data, top: p, inner_product_param: {num_output: 2,"
                 " weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}\n"
                 "- {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss" +
                 weight + "}\n");
  };
  auto one = make("");
  auto two = make(", loss_weight: 2");
  float loss[2];
  std::vector<float> wd[2], bd[2], xd[2];
  int k = 0;
  for (auto* b : {one.get(), two.get()}) {
    loss[k] = forward_backward_on_random(*b, {"data", "t"}, 12);
    wd[k] = diff_of(*b->net->layer_by_name("ip")->blobs()[0]);
    bd[k] = diff_of(*b->net->layer_by_name("ip")->blobs()[1]);
    xd[k] = diff_of(*b->net->blob("data"));
    ++k;
  }
  // Same seed, same fillers: the weights agree.
  CHECK(one->net->layer_by_name("ip")->blobs()[0]->cpu_data()[0] ==
        two->net->layer_by_name("ip")->blobs()[0]->cpu_data()[0]);
  CHECK(loss[0] > 0.f);
  CHECK(loss[1] == doctest::Approx(2 * loss[0]));
  // The loss blob itself holds the unweighted loss.
  CHECK(two->net->blob("loss")->cpu_data()[0] == doctest::Approx(loss[0]));
  for (size_t i = 0; i < wd[0].size(); ++i) CHECK(wd[1][i] == doctest::Approx(2 * wd[0][i]));
  for (size_t i = 0; i < bd[0].size(); ++i) CHECK(bd[1][i] == doctest::Approx(2 * bd[0][i]));
  for (size_t i = 0; i < xd[0].size(); ++i) CHECK(xd[1][i] == doctest::Approx(2 * xd[0][i]));
  REQUIRE(one->net->output_names() == std::vector<std::string>{"loss"});
  CHECK(one->net->output_loss_weight(0) == 1.f);
  CHECK(two->net->output_loss_weight(0) == 2.f);
}

TEST_CASE("net: propagate_down false stops the gradient into that bottom") {
  auto make = [](const std::string& pd) {
    return build("name: n\n"
                 "layer:\n"
                 "- {name: input, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
                 "- {name: ip1, type: InnerProduct, bottom: data, top: p1, inner_product_param: {num_output: 2,"
                 " weight_filler: {type: gaussian}}}\n"
                 "- {name: ip2, type: InnerProduct, bottom: data, top: p2, inner_product_param: {num_output: 2,"
                 " weight_filler: {type: gaussian}}}\n"
                 "- {name: loss, type: EuclideanLoss, bottom: [p1, p2], top: loss, propagate_down: " +
                 pd + "}\n");
  };
  auto stopped = make("[true, false]");
  auto both = make("[true, true]");
  for (auto* b : {stopped.get(), both.get()}) {
    forward_backward_on_random(*b, {"data"}, 14);
  }
  Net& net = *stopped->net;
  CHECK(net.layer_needs_backward(index_of(net, "ip1")));
  CHECK_FALSE(net.layer_needs_backward(index_of(net, "ip2")));
  CHECK(all_zero(diff_of(*net.layer_by_name("ip2")->blobs()[0])));
  CHECK(all_zero(diff_of(*net.layer_by_name("ip2")->blobs()[1])));
  const auto w1 = diff_of(*net.layer_by_name("ip1")->blobs()[0]);
  CHECK_FALSE(all_zero(w1));
  // ip1's gradient is unchanged by the other branch being cut: d/dW1 of ½|p1 - p2|²/N.
  check_against_numeric(net, *stopped->ctx, *net.layer_by_name("ip1")->blobs()[0], w1, "ip1 weight");
  // The control: with propagate_down true both branches learn.
  CHECK(both->net->layer_needs_backward(index_of(*both->net, "ip2")));
  CHECK_FALSE(all_zero(diff_of(*both->net->layer_by_name("ip2")->blobs()[0])));

  CHECK_THROWS_WITH_AS(make("[true]"), doctest::Contains("propagate_down has 1 value(s) but the layer has 2 bottom(s)"),
                       ConfigError);
}

TEST_CASE("net: propagate_down true on a loss layer's labels is refused in a training net, by layer and bottom") {
  // Caffe builds this net and aborts at the first backward pass; a test net never runs one.
  const std::string yaml =
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, label], input_param: {shape: [{dim: [2, 3]}, {dim: [2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: p, inner_product_param: {num_output: 3}}\n"
      "- {name: loss, type: SoftmaxWithLoss, bottom: [p, label], top: loss, propagate_down: [true, true]}\n";
  CHECK_THROWS_WITH_AS(build(yaml), doctest::Contains("(loss): propagate_down is true for bottom 1 (label)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(yaml), doctest::Contains("SoftmaxWithLoss layer computes no gradient for that input"),
                       ConfigError);
  CHECK_NOTHROW(build(yaml, NetState{Phase::TEST, 0, {}}));
  std::string allowed = yaml;
  allowed.replace(allowed.find("[true, true]"), 12, "[true, false]");
  CHECK_NOTHROW(build(allowed));
  // A loss layer whose backward never runs (a monitor, loss_weight 0) is never asked, as in Caffe.
  std::string monitor = yaml;
  monitor.replace(monitor.find("propagate_down"), 0, "loss_weight: 0, ");
  CHECK_NOTHROW(build(monitor));
  // Caffe's ContrastiveLoss backward leaves its similarity input alone rather than aborting.
  CHECK_NOTHROW(build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [a, b, sim], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 3]}, {dim: "
      "[2]}]}}\n"
      "- {name: ipa, type: InnerProduct, bottom: a, top: pa, inner_product_param: {num_output: 2}}\n"
      "- {name: ipb, type: InnerProduct, bottom: b, top: pb, inner_product_param: {num_output: 2}}\n"
      "- {name: loss, type: ContrastiveLoss, bottom: [pa, pb, sim], top: loss, propagate_down: [true, true, true]}\n"));
}

TEST_CASE("net: lr_mult 0 freezes a parameter: no gradient is computed for it") {
  auto b = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: p, param: [{lr_mult: 0}, {lr_mult: 1}],"
      " inner_product_param: {num_output: 2, weight_filler: {type: gaussian}}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss}\n");
  Net& net = *b->net;
  Layer& ip = *net.layer_by_name("ip");
  CHECK_FALSE(ip.param_propagate_down(0));
  CHECK(ip.param_propagate_down(1));
  REQUIRE(net.learnable_params().size() == 2);
  CHECK(net.params_lr() == std::vector<float>{0.f, 1.f});
  CHECK(net.layer_needs_backward(index_of(net, "ip")));
  forward_backward_on_random(*b, {"data", "t"}, 15);
  CHECK(all_zero(diff_of(*ip.blobs()[0])));
  const auto bias = diff_of(*ip.blobs()[1]);
  CHECK_FALSE(all_zero(bias));
  check_against_numeric(net, *b->ctx, *ip.blobs()[1], bias, "bias");

  // Both frozen and no input gradient wanted: the layer needs no backward at all.
  auto frozen = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: p, param: [{lr_mult: 0}, {lr_mult: 0}],"
      " inner_product_param: {num_output: 2}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss}\n");
  CHECK_FALSE(frozen->net->layer_needs_backward(index_of(*frozen->net, "ip")));
}

TEST_CASE("net: outputs are the unconsumed blobs in name order, with their loss weights") {
  auto b = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, label], input_param: {shape: [{dim: [2, 3]}, {dim: [2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: score, inner_product_param: {num_output: 3}}\n"
      "- {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss}\n"
      "- {name: acc, type: Accuracy, bottom: [score, label], top: accuracy}\n"
      "- {name: side, type: InnerProduct, bottom: data, top: aside, inner_product_param: {num_output: 1}}\n");
  Net& net = *b->net;
  // Created as loss, accuracy, aside; Caffe lists the remaining blobs sorted by name.
  REQUIRE(net.output_names() == std::vector<std::string>{"accuracy", "aside", "loss"});
  CHECK(net.output_loss_weight(0) == 0.f);
  CHECK(net.output_loss_weight(1) == 0.f);
  CHECK(net.output_loss_weight(2) == 1.f);
  const auto outs = net.outputs();
  REQUIRE(outs.size() == 3);
  CHECK(outs[0] == net.blob("accuracy"));
  CHECK(outs[2] == net.blob("loss"));
}

TEST_CASE("net: a loss on a blob other layers read is output under the user's name, not the split's") {
  auto b = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: ip, loss_weight: 1, inner_product_param: {num_output: 2}}\n"
      "- {name: relu, type: ReLU, bottom: ip, top: r}\n");
  Net& net = *b->net;
  // Caffe prints "ip_ip_0_split_0" (the inserted Split's top carrying the loss).
  REQUIRE(net.output_names() == std::vector<std::string>{"ip", "r"});
  CHECK(net.output_loss_weight(0) == 1.f);
  CHECK(net.output_loss_weight(1) == 0.f);
  CHECK(net.outputs()[0] == net.blob("ip_ip_0_split_0"));
  CHECK(net.outputs()[1] == net.blob("r"));
  // A Split the user wrote keeps its tops' names, whatever the layer is called.
  auto own = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
      "- {name: data_split, type: Split, bottom: data, top: [a, b]}\n");
  CHECK(own->net->output_names() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("net: layers whose outputs reach no loss skip backward") {
  auto b = build(
      "name: n\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, label], input_param: {shape: [{dim: [2, 3]}, {dim: [2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: score, inner_product_param: {num_output: 3,"
      " weight_filler: {type: gaussian}}}\n"
      "- {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss}\n"
      "- {name: acc, type: Accuracy, bottom: [score, label], top: accuracy}\n"
      "- {name: side, type: InnerProduct, bottom: data, top: feat, inner_product_param: {num_output: 2,"
      " weight_filler: {type: gaussian}}}\n"
      "- {name: side_relu, type: ReLU, bottom: feat, top: feat}\n");
  Net& net = *b->net;
  CHECK(net.layer_needs_backward(index_of(net, "ip")));
  CHECK(net.layer_needs_backward(index_of(net, "loss")));
  CHECK_FALSE(net.layer_needs_backward(index_of(net, "acc")));
  CHECK_FALSE(net.layer_needs_backward(index_of(net, "side")));
  CHECK_FALSE(net.layer_needs_backward(index_of(net, "side_relu")));
  CHECK_FALSE(net.layer_needs_backward(index_of(net, "input")));
  forward_backward_on_random(*b, {"data"}, 17);
  CHECK(all_zero(diff_of(*net.layer_by_name("side")->blobs()[0])));
  CHECK(all_zero(diff_of(*net.layer_by_name("side")->blobs()[1])));
  CHECK_FALSE(all_zero(diff_of(*net.layer_by_name("ip")->blobs()[0])));
}

TEST_CASE("net: a loss weight on a top that another layer also consumes counts both uses") {
  // Total = 0.5 · Σ p + ½ |p - t|² / N: the split carries the 0.5 on its first output.
  auto b = build(
      "name: n\n"
      "force_backward: true\n"
      "layer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 3]}, {dim: [2, 2]}]}}\n"
      "- {name: ip, type: InnerProduct, bottom: data, top: p, loss_weight: 0.5, inner_product_param: {num_output: 2,"
      " weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [p, t], top: loss}\n");
  Net& net = *b->net;
  REQUIRE(net.num_layers() == 4);
  CHECK(net.layer_name(2) == "p_ip_0_split");
  CHECK(net.layer(1).loss_weight(0) == 0.f);
  CHECK(net.layer(2).loss_weight(0) == 0.5f);
  const float total = forward_backward_on_random(*b, {"data", "t"}, 18);
  const Blob &p = *net.blob("p"), &t = *net.blob("t");
  double sum = 0, sq = 0;
  for (int i = 0; i < 4; ++i) {
    sum += p.cpu_data()[i];
    sq += (p.cpu_data()[i] - t.cpu_data()[i]) * (p.cpu_data()[i] - t.cpu_data()[i]);
  }
  CHECK(total == doctest::Approx(0.5 * sum + sq / 2 / 2));
  // Bias gradient by hand: 0.5 · N + Σ_n (p - t) / N per output.
  const auto bias = diff_of(*net.layer_by_name("ip")->blobs()[1]);
  for (int o = 0; o < 2; ++o) {
    double want = 0.5 * 2;
    for (int n = 0; n < 2; ++n) want += (p.cpu_data()[n * 2 + o] - t.cpu_data()[n * 2 + o]) / 2.0;
    CHECK(bias[static_cast<size_t>(o)] == doctest::Approx(want).epsilon(1e-4));
  }
  Blob& w = *net.layer_by_name("ip")->blobs()[0];
  const auto w_diff = diff_of(w);
  const auto x_diff = diff_of(*net.blob("data"));
  check_against_numeric(net, *b->ctx, w, w_diff, "ip weight");
  check_against_numeric(net, *b->ctx, *net.blob("data"), x_diff, "data");
}

// A TEST net whose blobs' lives do not overlap shares buffers between them; its
// outputs must not change, over several forwards with new inputs, and it must hold
// less. A net that needs backward keeps every buffer.
TEST_CASE("net: a forward-only net reuses activation memory without changing its outputs") {
  const std::string yaml = R"(
name: reuse
layer:
  - {name: data, type: Input, top: data, input_param: {shape: {dim: [2, 3, 8, 8]}}}
  - {name: conv1, type: Convolution, bottom: data, top: conv1,
     convolution_param: {num_output: 4, kernel_size: 3, pad: 1, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: relu1, type: ReLU, bottom: conv1, top: conv1}
  - {name: conv2a, type: Convolution, bottom: conv1, top: conv2a,
     convolution_param: {num_output: 4, kernel_size: 3, pad: 1, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: relu2a, type: ReLU, bottom: conv2a, top: conv2a}
  - {name: conv2b, type: Convolution, bottom: conv2a, top: conv2b,
     convolution_param: {num_output: 4, kernel_size: 3, pad: 1, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: sum, type: Eltwise, bottom: [conv1, conv2b], top: sum}
  - {name: pool, type: Pooling, bottom: sum, top: pool, pooling_param: {pool: MAX, kernel_size: 2, stride: 2}}
  - {name: flat, type: Flatten, bottom: pool, top: flat}
  - {name: ip, type: InnerProduct, bottom: flat, top: ip,
     inner_product_param: {num_output: 5, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: prob, type: Softmax, bottom: ip, top: prob}
)";
  const NetState test_phase{Phase::TEST, 0, {}};
  auto plain = build(yaml, test_phase), shared = build(yaml, test_phase);
  const Net::MemoryPlan plan = shared->net->reuse_activation_memory();
  MESSAGE("activation bytes: " << plan.bytes_before << " -> " << plan.bytes_after << " in " << plan.buffers
                               << " shared buffers");
  CHECK(plan.buffers >= 2);
  CHECK(plan.bytes_after < plan.bytes_before);
  CHECK(plan.bytes_after <= plan.bytes_before * 3 / 4);
  // Blobs in one buffer really are: conv2a's and sum's lives do not overlap.
  CHECK(shared->net->blob("conv2a")->cpu_data() == shared->net->blob("sum")->cpu_data());
  CHECK(plain->net->blob("conv2a")->cpu_data() != plain->net->blob("sum")->cpu_data());
  for (uint64_t seed : {3u, 4u, 5u}) {
    fill_random(*plain->net->blob("data"), seed);
    fill_random(*shared->net->blob("data"), seed);
    plain->net->forward(*plain->ctx);
    shared->net->forward(*shared->ctx);
    const Blob& want = *plain->net->blob("prob");
    const Blob& got = *shared->net->blob("prob");
    CHECK(std::vector<float>(want.cpu_data(), want.cpu_data() + want.count()) ==
          std::vector<float>(got.cpu_data(), got.cpu_data() + got.count()));
  }

  // A net with a loss shares too (a TEST net usually has one), and then refuses backward.
  const std::string with_loss = yaml + R"(
  - {name: label, type: Input, top: label, input_param: {shape: {dim: [2]}}}
  - {name: loss, type: SoftmaxWithLoss, bottom: [ip, label], top: loss}
)";
  auto trained = build(with_loss);
  CHECK(trained->net->reuse_activation_memory().buffers >= 2);
  trained->net->forward(*trained->ctx);
  CHECK_THROWS_WITH_AS(trained->net->backward(*trained->ctx), doctest::Contains("forward only"), Error);
}

namespace {
// Every learnable parameter's gradient of `a` and `b` (nets with the same parameters in
// the same order) agree to float rounding.
void check_same_param_diffs(Net& a, Net& b, const std::string& what) {
  REQUIRE(a.learnable_params().size() == b.learnable_params().size());
  for (size_t i = 0; i < a.learnable_params().size(); ++i) {
    const Blob &pa = *a.learnable_params()[i], &pb = *b.learnable_params()[i];
    REQUIRE(pa.count() == pb.count());
    double diff = 0, norm = 0;
    for (int k = 0; k < pa.count(); ++k) {
      diff += std::pow(static_cast<double>(pa.cpu_diff()[k]) - pb.cpu_diff()[k], 2);
      norm += std::pow(static_cast<double>(pb.cpu_diff()[k]), 2);
    }
    INFO(what << ", parameter " << i);
    CHECK(std::sqrt(diff) <= 1e-4 * std::max(std::sqrt(norm), 1e-6));
  }
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}
}  // namespace

TEST_CASE("net: a backward never reads values a later in-place layer rewrote (LRN, ReLU), on either engine") {
  // LRN's backward used y, ReLU's (not in place) used y as its mask: a Scale or BatchNorm
  // in place on their tops then changed the gradient. Each net is compared with its twin
  // that writes those tops elsewhere, which must give the same parameter gradients.
  const std::string head =
      "name: n\nlayer:\n"
      "- {name: input, type: Input, top: [data, t], input_param: {shape: [{dim: [2, 8, 6, 6]}, {dim: [2, 3]}]}}\n"
      "- {name: c1, type: Convolution, bottom: data, top: c1, convolution_param: {num_output: 16, kernel_size: 3,"
      " pad: 1, engine: ENGINE, weight_filler: {type: gaussian, std: 0.3}}}\n";
  const std::string lrn =
      head +
      "- {name: n1, type: LRN, bottom: c1, top: n1, lrn_param: {local_size: 5, alpha: 0.5, beta: 0.75, engine: ENGINE}}\n"
      "- {name: s1, type: Scale, bottom: n1, top: OUT, scale_param: {filler: {type: gaussian, std: 2}}}\n"
      "- {name: fc, type: InnerProduct, bottom: OUT, top: fc, inner_product_param: {num_output: 3,"
      " weight_filler: {type: gaussian, std: 0.1}}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [fc, t], top: loss}\n";
  const std::string relu =
      head +
      "- {name: r1, type: ReLU, bottom: c1, top: r, relu_param: {engine: ENGINE}}\n"
      "- {name: bn, type: BatchNorm, bottom: r, top: OUT}\n"
      "- {name: fc, type: InnerProduct, bottom: OUT, top: fc, inner_product_param: {num_output: 3,"
      " weight_filler: {type: gaussian, std: 0.1}}}\n"
      "- {name: loss, type: EuclideanLoss, bottom: [fc, t], top: loss}\n";
  for (const std::string engine : {"DEFAULT", "CAFFE"})
    for (const auto& [net, blob] : {std::pair{lrn, std::string("n1")}, std::pair{relu, std::string("r")}}) {
      auto in_place = build(replaced(replaced(net, "ENGINE", engine), "OUT", blob));
      auto apart = build(replaced(replaced(net, "ENGINE", engine), "OUT", "out"));
      forward_backward_on_random(*in_place, {"data", "t"}, 5);
      forward_backward_on_random(*apart, {"data", "t"}, 5);
      check_same_param_diffs(*in_place->net, *apart->net, engine + " with " + blob + " rewritten in place");
    }
}

TEST_CASE("net: oneDNN's convolution restages an input rewritten since forward, as the reference reads it") {
  // c1 feeds c2 and, through Flatten (the same memory), a ReLU in place that rewrites it
  // after c2's forward: the weight gradient must come from the values there now, as the
  // reference (and Caffe) computes it, not from the copy forward staged.
  const std::string net =
      "name: n\nlayer:\n"
      "- {name: input, type: Input, top: [data, t, u], input_param: {shape: [{dim: [2, 4, 6, 6]}, {dim: [2, 3]},"
      " {dim: [2, 3]}]}}\n"
      "- {name: c1, type: Convolution, bottom: data, top: c1, convolution_param: {num_output: 32, kernel_size: 3,"
      " pad: 1, engine: CAFFE, weight_filler: {type: gaussian, std: 0.3}}}\n"
      "- {name: c2, type: Convolution, bottom: c1, top: c2, convolution_param: {num_output: 16, kernel_size: 3,"
      " engine: ENGINE, weight_filler: {type: gaussian, std: 0.1}}}\n"
      "- {name: flat, type: Flatten, bottom: c1, top: f}\n"
      "- {name: r, type: ReLU, bottom: f, top: f, relu_param: {engine: CAFFE}}\n"
      "- {name: fc1, type: InnerProduct, bottom: f, top: fc1, inner_product_param: {num_output: 3,"
      " weight_filler: {type: gaussian, std: 0.1}}}\n"
      "- {name: fc2, type: InnerProduct, bottom: c2, top: fc2, inner_product_param: {num_output: 3,"
      " weight_filler: {type: gaussian, std: 0.1}}}\n"
      "- {name: l1, type: EuclideanLoss, bottom: [fc1, t], top: l1}\n"
      "- {name: l2, type: EuclideanLoss, bottom: [fc2, u], top: l2}\n";
  auto fast = build(replaced(net, "ENGINE", "DEFAULT"));
  auto reference = build(replaced(net, "ENGINE", "CAFFE"));
  forward_backward_on_random(*fast, {"data", "t", "u"}, 9);
  forward_backward_on_random(*reference, {"data", "t", "u"}, 9);
  check_same_param_diffs(*fast->net, *reference->net, "c2 after its input was rewritten");
}

TEST_CASE("net: a control character in a layer, blob or parameter name, or an empty blob name, is refused at setup") {
  // A NUL cut the name short in the snapshot's HDF5 path: the run failed after its training.
  const auto net_with = [](const std::string& field) {
    return "name: n\n"
           "layer:\n"
           "- {name: input, type: Input, top: data, input_param: {shape: {dim: [2, 3]}}}\n"
           "- {" +
           field + ", type: InnerProduct, bottom: data, inner_product_param: {num_output: 2}}\n";
  };
  CHECK_THROWS_WITH_AS(build(net_with("name: \"ip\\0a\", top: p")),
                       doctest::Contains("name 'ip\\x00a' holds a control character; use printable characters"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(net_with("name: ip, top: \"p\\e[31m\"")),
                       doctest::Contains("top 'p\\x1b[31m' holds a control character"), ConfigError);
  CHECK_THROWS_WITH_AS(build(net_with("name: ip, top: p, param: [{name: \"w\\tx\"}]")),
                       doctest::Contains("param name 'w\\x09x' holds a control character"), ConfigError);
  CHECK_NOTHROW(build(net_with("name: \"ip/β 1\", top: p")));
  // An empty blob name used to fail only at the layer that read it.
  CHECK_THROWS_WITH_AS(build(net_with("name: ip, top: \"\"")),
                       doctest::Contains("(ip): a top has an empty name; give every blob a name"), ConfigError);
  CHECK_THROWS_WITH_AS(build(net_with("name: ip, top: [p, \"\"]")), doctest::Contains("a top has an empty name"),
                       ConfigError);
}

namespace {
// A small fully convolutional net (FCN's shape: convolutions, a skip, an upsampling
// Deconvolution cropped back to the input's size, a per-pixel loss that ignores label 255)
// whose input is (1, 3, H, W) with H and W written as HH and WW.
const char* kFcnYaml = R"(
name: fcn
layer:
  - {name: input, type: Input, top: [data, label], input_param: {shape: [{dim: [1, 3, HH, WW]}, {dim: [1, 1, HH, WW]}]}}
  - {name: conv1, type: Convolution, bottom: data, top: conv1, convolution_param: {num_output: 6, kernel_size: 3,
     pad: 1, engine: ENGINE, weight_filler: {type: gaussian, std: 0.3}, bias_filler: {type: gaussian, std: 0.1}}}
  - {name: bn1, type: BatchNorm, bottom: conv1, top: conv1}
  - {name: relu1, type: ReLU, bottom: conv1, top: conv1, relu_param: {engine: ENGINE}}
  - {name: norm1, type: LRN, bottom: conv1, top: norm1, lrn_param: {local_size: 3, engine: ENGINE}}
  - {name: pool1, type: Pooling, bottom: norm1, top: pool1,
     pooling_param: {pool: MAX, kernel_size: 3, stride: 2, engine: ENGINE}}
  - {name: conv2, type: Convolution, bottom: pool1, top: conv2, convolution_param: {num_output: 4, kernel_size: 1,
     engine: ENGINE, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: up, type: Deconvolution, bottom: conv2, top: up, convolution_param: {num_output: 4, kernel_size: 4,
     stride: 2, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: crop, type: Crop, bottom: [up, data], top: upc, crop_param: {axis: 2, offset: 1}}
  - {name: cat, type: Concat, bottom: [upc, conv1], top: cat}
  - {name: score, type: Convolution, bottom: cat, top: score, convolution_param: {num_output: 3, kernel_size: 1,
     engine: ENGINE, weight_filler: {type: gaussian, std: 0.3}}}
  - {name: loss, type: SoftmaxWithLoss, bottom: [score, label], top: loss, loss_param: {ignore_label: 255}}
  - {name: accuracy, type: Accuracy, bottom: [score, label], top: accuracy, accuracy_param: {ignore_label: 255}}
)";

std::string fcn_yaml(const std::string& engine, int height, int width) {
  return replaced(replaced(replaced(kFcnYaml, "ENGINE", engine), "HH", std::to_string(height)), "WW",
                  std::to_string(width));
}

// Random pixels in data and labels 0..2 in label, one pixel in seven ignored (255).
void fill_fcn_inputs(Net& net, uint64_t seed) {
  fill_random(*net.blob("data"), seed);
  Rng rng(seed + 100);
  Blob& label = *net.blob("label");
  for (int i = 0; i < label.count(); ++i)
    label.mutable_cpu_data()[i] = i % 7 == 3 ? 255.f : static_cast<float>(rng.next_u32() % 3);
}

struct PassResult {
  float loss = 0, accuracy = 0;
  std::vector<std::vector<float>> param_diffs;
};

PassResult fcn_pass(Built& b, uint64_t seed) {
  fill_fcn_inputs(*b.net, seed);
  b.net->clear_param_diffs();
  PassResult r;
  r.loss = b.net->forward_backward(*b.ctx);
  r.accuracy = b.net->blob("accuracy")->cpu_data()[0];
  for (const Blob* p : b.net->learnable_params()) r.param_diffs.push_back(diff_of(*p));
  return r;
}

void check_same_pass(const PassResult& got, const PassResult& want, const std::string& what) {
  INFO(what);
  CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-5));
  CHECK(got.accuracy == doctest::Approx(want.accuracy).epsilon(1e-6));
  REQUIRE(got.param_diffs.size() == want.param_diffs.size());
  for (size_t i = 0; i < got.param_diffs.size(); ++i) {
    REQUIRE(got.param_diffs[i].size() == want.param_diffs[i].size());
    double diff = 0, norm = 0;
    for (size_t k = 0; k < got.param_diffs[i].size(); ++k) {
      diff += std::pow(static_cast<double>(got.param_diffs[i][k]) - want.param_diffs[i][k], 2);
      norm += std::pow(static_cast<double>(want.param_diffs[i][k]), 2);
    }
    INFO("parameter " << i);  // BatchNorm's statistics have no gradient: both zero
    CHECK(std::sqrt(diff) <= 1e-4 * std::sqrt(norm));
  }
}

void copy_params(Net& from, Net& to) {
  REQUIRE(from.num_layers() == to.num_layers());
  for (int i = 0; i < from.num_layers(); ++i) {
    REQUIRE(from.layer(i).blobs().size() == to.layer(i).blobs().size());
    for (size_t j = 0; j < from.layer(i).blobs().size(); ++j)
      to.layer(i).blobs()[j]->copy_from(*from.layer(i).blobs()[j]);
  }
}
}  // namespace

TEST_CASE("net: a net whose input changes size between passes computes what a net built for that size does") {
  // Caffe reshapes every layer before its forward, so a batch of one image of any size goes
  // through a fully convolutional net: every layer's shapes, buffers and oneDNN primitives
  // must follow the input from pass to pass, growing and shrinking.
  for (const std::string engine : {"DEFAULT", "CAFFE"}) {
    INFO("engine " << engine);
    auto net = build(fcn_yaml(engine, 13, 11));
    const PassResult first = fcn_pass(*net, 21);
    for (const auto& [h, w] : {std::pair{19, 16}, std::pair{9, 14}, std::pair{13, 11}}) {
      net->net->blob("data")->reshape({1, 3, h, w});
      net->net->blob("label")->reshape({1, 1, h, w});
      const PassResult got = fcn_pass(*net, 30 + static_cast<uint64_t>(h));
      auto fresh = build(fcn_yaml(engine, h, w));
      copy_params(*net->net, *fresh->net);
      const PassResult want = fcn_pass(*fresh, 30 + static_cast<uint64_t>(h));
      check_same_pass(got, want, "reshaped to " + std::to_string(h) + "x" + std::to_string(w));
      CHECK(net->net->blob("score")->shape() == std::vector<int>{1, 3, h, w});
    }
    // Back at the first size, the first pass's inputs give its results again.
    check_same_pass(fcn_pass(*net, 21), first, "back at 13x11");
  }
}

TEST_CASE("net: a forward-only net with shared activation memory follows its input to a larger size") {
  const NetState test_phase{Phase::TEST, 0, {}};
  auto shared = build(fcn_yaml("DEFAULT", 9, 8), test_phase);
  CHECK(shared->net->reuse_activation_memory().buffers >= 2);
  fill_fcn_inputs(*shared->net, 5);
  shared->net->forward(*shared->ctx);
  shared->net->blob("data")->reshape({1, 3, 21, 17});
  shared->net->blob("label")->reshape({1, 1, 21, 17});
  auto plain = build(fcn_yaml("DEFAULT", 21, 17), test_phase);
  copy_params(*shared->net, *plain->net);
  for (uint64_t seed : {6u, 7u}) {
    fill_fcn_inputs(*shared->net, seed);
    fill_fcn_inputs(*plain->net, seed);
    const float got = shared->net->forward(*shared->ctx), want = plain->net->forward(*plain->ctx);
    CHECK(got == doctest::Approx(want).epsilon(1e-5));
    const Blob &a = *shared->net->blob("score"), &b = *plain->net->blob("score");
    REQUIRE(a.shape() == b.shape());
    for (int i = 0; i < a.count(); ++i) REQUIRE(a.cpu_data()[i] == doctest::Approx(b.cpu_data()[i]).epsilon(1e-5));
  }
}
