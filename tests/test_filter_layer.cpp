#include <vector>

#include "engine/error.hpp"
#include "layer_test_util.hpp"

using namespace crema;
using test::check_values;
using test::set_values;

TEST_CASE("Filter forwards the items whose selector is non-zero, for every bottom") {
  auto t = test::make_layer("{type: Filter}");
  Blob data({4, 2}), label({4}), select({4, 1, 1}), top_data, top_label;
  set_values(data, {1, 2, 3, 4, 5, 6, 7, 8});
  set_values(label, {10, 11, 12, 13});
  set_values(select, {0, 1, 0, 2});
  Context ctx(1);
  t.layer->setup(ctx, {&data, &label, &select}, {&top_data, &top_label});
  // At setup the tops hold the whole batch, as in Caffe.
  CHECK(top_data.shape() == std::vector<int>{4, 2});
  t.layer->forward(ctx, {&data, &label, &select}, {&top_data, &top_label});
  CHECK(top_data.shape() == std::vector<int>{2, 2});
  check_values(top_data, {3, 4, 7, 8});
  check_values(top_label, {11, 13});

  // The top size follows the data.
  set_values(select, {1, 1, 1, 0});
  t.layer->forward(ctx, {&data, &label, &select}, {&top_data, &top_label});
  check_values(top_label, {10, 11, 12});
  set_values(select, {0, 0, 0, 0});
  t.layer->forward(ctx, {&data, &label, &select}, {&top_data, &top_label});
  CHECK(top_data.shape() == std::vector<int>{0, 2});
}

TEST_CASE("Filter backward copies kept items' gradients back and zeros the rest") {
  auto t = test::make_layer("{type: Filter}");
  Blob data({3, 2}), select({3}), top;
  set_values(select, {1, 0, 1});
  Context ctx(1);
  t.layer->setup(ctx, {&data, &select}, {&top});
  t.layer->forward(ctx, {&data, &select}, {&top});
  set_values(top, {1, 2, 3, 4});
  std::copy(top.cpu_data(), top.cpu_data() + 4, top.mutable_cpu_diff());
  data.set_diff(9.f);
  t.layer->backward(ctx, {&top}, {true, false}, {&data, &select});
  const std::vector<float> want = {1, 2, 0, 0, 3, 4};
  for (int i = 0; i < 6; ++i) CHECK(data.cpu_diff()[i] == want[static_cast<size_t>(i)]);
  CHECK(t.layer->allow_force_backward(0));
  CHECK_FALSE(t.layer->allow_force_backward(1));
}

TEST_CASE("Filter errors: tops, selector shape, batch sizes") {
  Context ctx(1);
  Blob data({3, 2}), other({2, 2}), select({3}), wide({3, 2}), t1, t2;
  auto a = test::make_layer("{type: Filter}");
  CHECK_THROWS_WITH_AS(a.layer->setup(ctx, {&data, &select}, {&t1, &t2}), doctest::Contains("one top per filtered"),
                       ConfigError);
  auto b = test::make_layer("{type: Filter}");
  CHECK_THROWS_WITH_AS(b.layer->setup(ctx, {&data, &wide}, {&t1}), doctest::Contains("one value per item"),
                       ConfigError);
  auto c = test::make_layer("{type: Filter}");
  CHECK_THROWS_WITH_AS(c.layer->setup(ctx, {&other, &select}, {&t1}), doctest::Contains("as many items"),
                       ConfigError);
}

TEST_CASE("Filter gradient") {
  auto t = test::make_layer("{type: Filter}");
  Blob data({5, 2, 2}), label({5, 3}), select({5}), y0, y1;
  Rng rng(8);
  test::fill_gaussian(data, rng);
  test::fill_gaussian(label, rng);
  set_values(select, {1, 0, 1, 1, 0});
  test::GradCheck opt;
  opt.bottoms = {0, 1};
  test::check_gradients(*t.layer, {&data, &label, &select}, {&y0, &y1}, opt);
}
