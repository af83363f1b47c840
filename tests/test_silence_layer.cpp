#include <doctest/doctest.h>

#include "engine/net.hpp"
#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Silence takes bottoms, produces nothing and writes zero gradients") {
  auto t = test::make_layer("{type: Silence}");
  Blob a({2, 3}), b({4});
  test::fill_counting(a, 1.f);
  test::fill_counting(b, 1.f);
  a.set_diff(5.f);
  b.set_diff(5.f);
  Context ctx(1);
  t.layer->setup(ctx, {&a, &b}, {});
  CHECK(t.layer->forward(ctx, {&a, &b}, {}) == 0.f);
  CHECK(a.cpu_data()[5] == 6.f);  // data untouched
  t.layer->backward(ctx, {}, {true, false}, {&a, &b});
  for (int i = 0; i < a.count(); ++i) CHECK(a.cpu_diff()[i] == 0.f);
  for (int i = 0; i < b.count(); ++i) CHECK(b.cpu_diff()[i] == 5.f);  // not asked for
}

TEST_CASE("Silence refuses tops and needs a bottom") {
  auto t = test::make_layer("{type: Silence}");
  Blob a({2}), y;
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a}, {&y}), ConfigError);
  CHECK_THROWS_AS(t.layer->setup(ctx, {}, {}), ConfigError);
}

TEST_CASE("Silence in a net swallows a blob so that it is no net output") {
  const char* yaml = R"(
name: silence
layer:
  - {name: in, type: Input, top: [a, b], input_param: {shape: {dim: [2, 3]}}}
  - {name: mute, type: Silence, bottom: b}
)";
  Node root = io::parse_yaml(yaml, "net.yaml");
  NetSpec spec = NetSpec::parse(root);
  Context ctx(1);
  Net net(spec, NetState{Phase::TRAIN, 0, {}}, ctx, /*quiet=*/true);
  CHECK(net.output_names() == std::vector<std::string>{"a"});
  net.forward(ctx);
}
