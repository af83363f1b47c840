#include "layer_test_util.hpp"

using namespace crema;

namespace {

// Tile `yaml` on a bottom of `shape` holding 0, 1, 2, ...
Blob tile(const std::string& yaml, const std::vector<int>& shape) {
  auto t = test::make_layer(yaml);
  Blob x(shape), y;
  test::fill_counting(x, 0.f);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  return y;
}

}  // namespace

TEST_CASE("Tile repeats everything from the axis on") {
  Blob y = tile("{type: Tile, tile_param: {tiles: 2}}", {2, 3});
  CHECK(y.shape() == std::vector<int>{2, 6});
  test::check_values(y, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  y = tile("{type: Tile, tile_param: {axis: 0, tiles: 3}}", {2, 2});
  CHECK(y.shape() == std::vector<int>{6, 2});
  test::check_values(y, {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
  y = tile("{type: Tile, tile_param: {axis: -1, tiles: 2}}", {2, 2, 2});
  CHECK(y.shape() == std::vector<int>{2, 2, 4});
  test::check_values(y, {0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7});
}

TEST_CASE("Tile backward sums the gradients of the copies") {
  auto t = test::make_layer("{type: Tile, tile_param: {tiles: 2}}");
  Blob x({2, 3}), y;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = static_cast<float>(i);
  t.layer->backward(ctx, {&y}, {true}, {&x});
  // Row 0: dy 0 1 2 | 3 4 5; row 1: 6 7 8 | 9 10 11.
  const float want[] = {3, 5, 7, 15, 17, 19};
  for (int i = 0; i < 6; ++i) CHECK(x.cpu_diff()[i] == want[i]);
}

TEST_CASE("Tile needs a positive tiles") {
  CHECK_THROWS_AS(test::make_layer("{type: Tile}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Tile, tile_param: {tiles: 0}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Tile, tile_param: {tiles: 2, axes: 1}}"), ConfigError);
  // A tiled axis longer than a blob can hold is said as such, not as a negative dimension.
  auto t = test::make_layer("{type: Tile, tile_param: {tiles: 2000000000}}");
  Context ctx(1);
  Blob x({4, 3}), y;
  CHECK_THROWS_WITH_AS(t.layer->setup(ctx, {&x}, {&y}),
                       doctest::Contains("tiles 2000000000 makes axis 1 6000000000 long, more than a blob can hold"),
                       ConfigError);
}

TEST_CASE("Tile gradient") {
  for (const char* cfg : {"{type: Tile, tile_param: {tiles: 3}}", "{type: Tile, tile_param: {axis: 2, tiles: 2}}"}) {
    CAPTURE(cfg);
    test::check_gradients(cfg, {{2, 3, 2}});
  }
}
