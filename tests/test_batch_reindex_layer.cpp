#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

TEST_CASE("BatchReindex forward picks items by index, repeats allowed") {
  auto t = test::make_layer("{type: BatchReindex}");
  Blob x({3, 2}), idx({4}), y;
  set_values(x, {1, 2, 3, 4, 5, 6});
  set_values(idx, {2, 0, 2, 1});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &idx}, {&y});
  t.layer->forward(ctx, {&x, &idx}, {&y});
  CHECK(y.shape() == std::vector<int>{4, 2});
  check_values(y, {5, 6, 1, 2, 5, 6, 3, 4});
}

TEST_CASE("BatchReindex backward sums the gradients of repeated items and zeros unused ones") {
  auto t = test::make_layer("{type: BatchReindex}");
  Blob x({3, 1}), idx({3}), y;
  set_values(idx, {2, 2, 0});
  Context ctx(1);
  t.layer->setup(ctx, {&x, &idx}, {&y});
  t.layer->forward(ctx, {&x, &idx}, {&y});
  set_values(y, {1, 10, 100});
  std::copy(y.cpu_data(), y.cpu_data() + 3, y.mutable_cpu_diff());
  x.set_diff(7.f);
  t.layer->backward(ctx, {&y}, {true, false}, {&x, &idx});
  CHECK(x.cpu_diff()[0] == 100);
  CHECK(x.cpu_diff()[1] == 0);
  CHECK(x.cpu_diff()[2] == 11);
  CHECK_FALSE(t.layer->allow_force_backward(1));
}

TEST_CASE("BatchReindex errors: bad indices and shapes") {
  Context ctx(1);
  auto t = test::make_layer("{type: BatchReindex}");
  Blob x({3, 2}), idx({2}), y;
  t.layer->setup(ctx, {&x, &idx}, {&y});
  for (float bad : {3.f, -1.f, 1.5f}) {
    CAPTURE(bad);
    set_values(idx, {0, bad});
    CHECK_THROWS_WITH_AS(t.layer->forward(ctx, {&x, &idx}, {&y}), doctest::Contains("at position 1 of bottom 1 is "),
                         Error);
  }
  Blob idx2({2, 1}), y2;
  auto t2 = test::make_layer("{type: BatchReindex}");
  CHECK_THROWS_WITH_AS(t2.layer->setup(ctx, {&x, &idx2}, {&y2}), doctest::Contains("must be 1-D"), ConfigError);
}

TEST_CASE("BatchReindex gradient") {
  auto t = test::make_layer("{type: BatchReindex}");
  Blob x({4, 2, 3}), idx({5}), y;
  Rng rng(4);
  test::fill_gaussian(x, rng);
  set_values(idx, {3, 0, 3, 1, 2});
  test::GradCheck opt;
  opt.bottoms = {0};
  test::check_gradients(*t.layer, {&x, &idx}, {&y}, opt);
}
