#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("EuclideanLoss forward is sum (a - b)^2 / 2N, backward is +-(a - b) * weight / N") {
  auto t = test::make_layer("{type: EuclideanLoss, loss_weight: 3}");
  Blob a({2, 2}), b({2, 2}), loss;
  const float av[] = {1, 2, 3, 4}, bv[] = {0, 0, 1, 1};  // a - b = 1 2 2 3, sum of squares 18
  std::copy(av, av + 4, a.mutable_cpu_data());
  std::copy(bv, bv + 4, b.mutable_cpu_data());
  Context ctx(1);
  t.layer->setup(ctx, {&a, &b}, {&loss});
  CHECK(t.layer->forward(ctx, {&a, &b}, {&loss}) == doctest::Approx(3 * 4.5f));
  CHECK(loss.cpu_data()[0] == doctest::Approx(4.5f));
  loss.set_diff(3.f);  // the loss weight, as the net sets it
  t.layer->backward(ctx, {&loss}, {true, true}, {&a, &b});
  const float d[] = {1, 2, 2, 3};
  for (int i = 0; i < 4; ++i) {
    CHECK(a.cpu_diff()[i] == doctest::Approx(3 * d[i] / 2));
    CHECK(b.cpu_diff()[i] == doctest::Approx(-3 * d[i] / 2));
  }
  CHECK(t.layer->allow_force_backward(1));  // the target is not a label
}

TEST_CASE("EuclideanLoss accepts shapes with equal counts per sample only") {
  Context ctx(1);
  Blob a({2, 4}), b({2, 2, 2}), c({2, 3}), loss;
  auto t = test::make_layer("{type: EuclideanLoss}");
  CHECK_NOTHROW(t.layer->setup(ctx, {&a, &b}, {&loss}));
  CHECK_THROWS_AS(t.layer->setup(ctx, {&a, &c}, {&loss}), ConfigError);
}

TEST_CASE("EuclideanLoss gradient") {
  for (const char* cfg : {"{type: EuclideanLoss}", "{type: EuclideanLoss, loss_weight: 2.5}"}) {
    auto t = test::make_layer(cfg);
    Blob a({3, 2, 4}), b({3, 8}), loss;
    Rng rng(3);
    test::fill_gaussian(a, rng);
    test::fill_gaussian(b, rng);
    test::check_gradients(*t.layer, {&a, &b}, {&loss});
  }
}
