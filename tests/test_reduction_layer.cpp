#include "layer_test_util.hpp"

using namespace crema;

namespace {

// x (2, 3): 1 -2 3 / -4 5 -6.
const std::vector<float> kX = {1, -2, 3, -4, 5, -6};

struct Reduced {
  Blob y;
  std::vector<float> dx;  // for top gradient dy = 1, 2, ...
};

Reduced reduce(const std::string& yaml) {
  CAPTURE(yaml);
  auto t = test::make_layer(yaml);
  Blob x({2, 3});
  test::set_values(x, kX);
  Reduced r;
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&r.y});
  t.layer->forward(ctx, {&x}, {&r.y});
  for (int i = 0; i < r.y.count(); ++i) r.y.mutable_cpu_diff()[i] = static_cast<float>(i + 1);
  t.layer->backward(ctx, {&r.y}, {true}, {&x});
  r.dx.assign(x.cpu_diff(), x.cpu_diff() + x.count());
  return r;
}

void check_dx(const Reduced& r, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i) CHECK(r.dx[i] == doctest::Approx(want[i]));
}

}  // namespace

TEST_CASE("Reduction SUM over everything by default gives a scalar") {
  Reduced r = reduce("{type: Reduction}");
  CHECK(r.y.num_axes() == 0);
  test::check_values(r.y, {-3});
  check_dx(r, {1, 1, 1, 1, 1, 1});
}

TEST_CASE("Reduction operations along axis 1, with coeff") {
  const std::string head = "{type: Reduction, reduction_param: {axis: 1, coeff: 2, operation: ";
  Reduced r = reduce(head + "SUM}}");
  CHECK(r.y.shape() == std::vector<int>{2});
  test::check_values(r.y, {4, -10});
  check_dx(r, {2, 2, 2, 4, 4, 4});
  r = reduce(head + "ASUM}}");
  test::check_values(r.y, {12, 30});
  check_dx(r, {2, -2, 2, -4, 4, -4});
  r = reduce(head + "SUMSQ}}");
  test::check_values(r.y, {28, 154});
  check_dx(r, {4, -8, 12, -32, 40, -48});
  r = reduce(head + "MEAN}}");
  test::check_values(r.y, {4.f / 3, -10.f / 3});
  check_dx(r, {2.f / 3, 2.f / 3, 2.f / 3, 4.f / 3, 4.f / 3, 4.f / 3});
}

TEST_CASE("Reduction keeps the axes before reduction_param.axis") {
  CHECK(test::top_shape("{type: Reduction, reduction_param: {axis: 2}}", {2, 3, 4}) == std::vector<int>{2, 3});
  CHECK(test::top_shape("{type: Reduction, reduction_param: {axis: -1}}", {2, 3, 4}) == std::vector<int>{2, 3});
  CHECK(test::top_shape("{type: Reduction, reduction_param: {axis: 0}}", {2, 3, 4}).empty());
}

TEST_CASE("Reduction rejects an unknown operation") {
  CHECK_THROWS_AS(test::make_layer("{type: Reduction, reduction_param: {operation: MAX}}"), ConfigError);
}

TEST_CASE("Reduction with a loss_weight is a loss") {
  auto t = test::make_layer("{type: Reduction, loss_weight: 0.5, reduction_param: {operation: SUMSQ}}");
  Blob x({2, 3}), y;
  test::set_values(x, kX);
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  CHECK(t.layer->forward(ctx, {&x}, {&y}) == doctest::Approx(0.5 * 91));
}

TEST_CASE("Reduction gradient") {
  const char* cfgs[] = {
      "{type: Reduction}",
      "{type: Reduction, reduction_param: {operation: SUM, axis: 1, coeff: 1.5}}",
      "{type: Reduction, reduction_param: {operation: ASUM, axis: 2, coeff: -1}}",
      "{type: Reduction, reduction_param: {operation: SUMSQ, axis: 1, coeff: 0.5}}",
      "{type: Reduction, reduction_param: {operation: MEAN, axis: -1, coeff: 3}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    test::GradCheck opt;
    opt.kink_range = 0.02f;  // ASUM at 0
    test::check_gradients(cfg, {{2, 3, 4}}, opt);
  }
}
