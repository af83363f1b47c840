#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("Concat along axis 1 interleaves per sample") {
  auto t = test::make_layer("{type: Concat}");
  Blob a({2, 1, 2}), b({2, 2, 2}), y;
  test::fill_counting(a, 0);    // a[n] = {0, 1}, {2, 3}
  test::fill_counting(b, 100);  // b[n] = {100..103}, {104..107}
  Context ctx(1);
  t.layer->setup(ctx, {&a, &b}, {&y});
  t.layer->forward(ctx, {&a, &b}, {&y});
  REQUIRE(y.shape() == std::vector<int>{2, 3, 2});
  const float want[] = {0, 1, 100, 101, 102, 103, 2, 3, 104, 105, 106, 107};
  for (int i = 0; i < 12; ++i) CHECK(y.cpu_data()[i] == want[i]);
  // Backward hands each bottom its slice.
  for (int i = 0; i < 12; ++i) y.mutable_cpu_diff()[i] = want[i] + 0.5f;
  t.layer->backward(ctx, {&y}, {true, true}, {&a, &b});
  for (int i = 0; i < a.count(); ++i) CHECK(a.cpu_diff()[i] == a.cpu_data()[i] + 0.5f);
  for (int i = 0; i < b.count(); ++i) CHECK(b.cpu_diff()[i] == b.cpu_data()[i] + 0.5f);
}

TEST_CASE("Concat along axis 0 appends, and legacy concat_dim means the same") {
  for (const char* cfg : {"{type: Concat, concat_param: {axis: 0}}", "{type: Concat, concat_param: {concat_dim: 0}}",
                          "{type: Concat, concat_param: {axis: -2}}"}) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob a({1, 3}), b({2, 3}), y;
    test::fill_counting(a, 0);
    test::fill_counting(b, 10);
    Context ctx(1);
    t.layer->setup(ctx, {&a, &b}, {&y});
    t.layer->forward(ctx, {&a, &b}, {&y});
    REQUIRE(y.shape() == std::vector<int>{3, 3});
    const float want[] = {0, 1, 2, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 9; ++i) CHECK(y.cpu_data()[i] == want[i]);
  }
}

TEST_CASE("Concat errors") {
  Context ctx(1);
  CHECK_THROWS_AS(test::make_layer("{type: Concat, concat_param: {axis: 1, concat_dim: 1}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Concat, concat_param: {concat_dim: -1}}"), ConfigError);
  auto t = test::make_layer("{type: Concat}");
  Blob a({2, 3, 4}), b({2, 3, 5}), c({2, 3}), y;
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &b}, {&y}), ConfigError);  // differ off the axis
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &c}, {&y}), ConfigError);  // differ in axes
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &b}, {&a}), ConfigError);  // in place
}

TEST_CASE("Concat gradient") {
  Rng rng(3);
  SUBCASE("axis 1, three bottoms") {
    auto t = test::make_layer("{type: Concat}");
    Blob a({2, 1, 3}), b({2, 2, 3}), c({2, 3, 3}), y;
    for (Blob* x : {&a, &b, &c}) test::fill_gaussian(*x, rng);
    test::check_gradients(*t.layer, {&a, &b, &c}, {&y});
  }
  SUBCASE("axis 0") {
    auto t = test::make_layer("{type: Concat, concat_param: {axis: 0}}");
    Blob a({2, 3}), b({1, 3}), y;
    for (Blob* x : {&a, &b}) test::fill_gaussian(*x, rng);
    test::check_gradients(*t.layer, {&a, &b}, {&y});
  }
  SUBCASE("one bottom") {
    auto t = test::make_layer("{type: Concat}");
    Blob a({2, 3}), y;
    test::fill_gaussian(a, rng);
    test::check_gradients(*t.layer, {&a}, {&y});
  }
}
