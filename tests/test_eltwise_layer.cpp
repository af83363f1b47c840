#include "layer_test_util.hpp"

using namespace crema;

namespace {

struct Inputs {
  Blob a{std::vector<int>{2, 2}}, b{std::vector<int>{2, 2}}, c{std::vector<int>{2, 2}};
  Inputs() {
    const float av[] = {1, -2, 3, 0.5f}, bv[] = {4, 5, -6, 0.5f}, cv[] = {-1, 2, 7, 0.25f};
    std::copy(av, av + 4, a.mutable_cpu_data());
    std::copy(bv, bv + 4, b.mutable_cpu_data());
    std::copy(cv, cv + 4, c.mutable_cpu_data());
  }
};

std::vector<float> forward(const std::string& cfg, const BlobVec& bottom) {
  auto t = test::make_layer(cfg);
  Blob y;
  Context ctx(1);
  t.layer->setup(ctx, bottom, {&y});
  t.layer->forward(ctx, bottom, {&y});
  return {y.cpu_data(), y.cpu_data() + y.count()};
}

using Values = std::vector<float>;

}  // namespace

TEST_CASE("Eltwise SUM, with and without coefficients") {
  Inputs in;
  CHECK(forward("{type: Eltwise}", {&in.a, &in.b}) == Values{5, 3, -3, 1});
  CHECK(forward("{type: Eltwise, eltwise_param: {operation: SUM, coeff: [1, -1]}}", {&in.a, &in.b}) ==
        Values{-3, -7, 9, 0});
  CHECK(forward("{type: Eltwise, eltwise_param: {coeff: [0.5, 2, -1]}}", {&in.a, &in.b, &in.c}) ==
        Values{9.5f, 7, -17.5f, 1});
}

TEST_CASE("Eltwise PROD and MAX") {
  Inputs in;
  CHECK(forward("{type: Eltwise, eltwise_param: {operation: PROD}}", {&in.a, &in.b, &in.c}) ==
        Values{-4, -20, -126, 0.0625f});
  CHECK(forward("{type: Eltwise, eltwise_param: {operation: MAX}}", {&in.a, &in.b, &in.c}) ==
        Values{4, 5, 7, 0.5f});
}

TEST_CASE("Eltwise MAX routes the gradient to the winning bottom, a tie goes to the later one") {
  Inputs in;
  auto t = test::make_layer("{type: Eltwise, eltwise_param: {operation: MAX}}");
  Blob y;
  Context ctx(1);
  const BlobVec bottom = {&in.a, &in.b, &in.c};
  t.layer->setup(ctx, bottom, {&y});
  t.layer->forward(ctx, bottom, {&y});
  const float dy[] = {10, 20, 30, 40};
  std::copy(dy, dy + 4, y.mutable_cpu_diff());
  t.layer->backward(ctx, {&y}, {true, true, true}, bottom);
  // Winners: b, b, c, and a tie between a and b (0.5) that b takes.
  CHECK(Values(in.a.cpu_diff(), in.a.cpu_diff() + 4) == Values{0, 0, 0, 0});
  CHECK(Values(in.b.cpu_diff(), in.b.cpu_diff() + 4) == Values{10, 20, 0, 40});
  CHECK(Values(in.c.cpu_diff(), in.c.cpu_diff() + 4) == Values{0, 0, 30, 0});
}

TEST_CASE("Eltwise PROD backward multiplies the other inputs, also where an input is 0") {
  Inputs in;
  in.a.mutable_cpu_data()[0] = 0;
  for (const char* cfg : {"{type: Eltwise, eltwise_param: {operation: PROD}}",
                          "{type: Eltwise, eltwise_param: {operation: PROD, stable_prod_grad: false}}"}) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob y;
    Context ctx(1);
    const BlobVec bottom = {&in.a, &in.b, &in.c};
    t.layer->setup(ctx, bottom, {&y});
    t.layer->forward(ctx, bottom, {&y});
    y.set_diff(2.f);
    t.layer->backward(ctx, {&y}, {true, true, true}, bottom);
    for (int i = 1; i < 4; ++i)
      CHECK(in.a.cpu_diff()[i] == doctest::Approx(2 * in.b.cpu_data()[i] * in.c.cpu_data()[i]));
    CHECK(in.b.cpu_diff()[1] == doctest::Approx(2 * -2 * 2));
    // d/da at a = 0 is b c = -4, which only the stable form can compute.
    if (std::string(cfg).find("false") == std::string::npos) CHECK(in.a.cpu_diff()[0] == doctest::Approx(2 * -4));
  }
}

TEST_CASE("Eltwise errors") {
  Inputs in;
  Context ctx(1);
  Blob y, odd({4});
  auto sum = test::make_layer("{type: Eltwise, eltwise_param: {coeff: [1, 2, 3]}}");
  CHECK_THROWS_AS(sum.layer->setup(ctx, {&in.a, &in.b}, {&y}), ConfigError);  // one coeff per bottom
  CHECK_THROWS_AS(test::make_layer("{type: Eltwise, eltwise_param: {operation: PROD, coeff: [1, 1]}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Eltwise, eltwise_param: {operation: MIN}}"), ConfigError);
  auto t = test::make_layer("{type: Eltwise}");
  CHECK_THROWS_AS(t.layer->setup(ctx, {&in.a, &odd}, {&y}), ConfigError);  // shapes differ
}

TEST_CASE("Eltwise gradient") {
  Rng rng(3);
  Blob a({2, 3, 2}), b({2, 3, 2}), c({2, 3, 2}), y;
  for (Blob* x : {&a, &b, &c}) test::fill_gaussian(*x, rng);
  for (const char* cfg : {"{type: Eltwise}", "{type: Eltwise, eltwise_param: {coeff: [2, -0.5, 1.5]}}",
                          "{type: Eltwise, eltwise_param: {operation: PROD}}",
                          "{type: Eltwise, eltwise_param: {operation: PROD, stable_prod_grad: false}}"}) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    test::check_gradients(*t.layer, {&a, &b, &c}, {&y});
  }
  // MAX: the inputs at each position are 0.2 apart, far beyond the step, so no
  // finite difference crosses a switch between bottoms.
  Blob* bottoms[] = {&a, &b, &c};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < a.count(); ++i)
      bottoms[k]->mutable_cpu_data()[i] = static_cast<float>((i * 7 + k * 13) % 11) * 0.1f - 0.5f;
  auto t = test::make_layer("{type: Eltwise, eltwise_param: {operation: MAX}}");
  test::check_gradients(*t.layer, {&a, &b, &c}, {&y});
}
