#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("Log forward with the defaults is ln x and the derivative is 1/x") {
  test::check_elementwise("{type: Log}", {1, 2.71828183f, 0.5f}, {0, 1, -0.69314718f}, {1, 0.36787944f, 2});
}

TEST_CASE("Log base, scale and shift: y = log_base(shift + scale x)") {
  // log10(1 + 2x) at 0, 4.5, 49.5; dy/dx = 2 / ((1 + 2x) ln 10).
  test::check_elementwise("{type: Log, log_param: {base: 10, scale: 2, shift: 1}}", {0, 4.5f, 49.5f}, {0, 1, 2},
                          {0.86858896f, 0.086858896f, 0.0086858896f});
}

TEST_CASE("Log rejects a base that is neither positive nor -1") {
  CHECK_THROWS_AS(test::make_layer("{type: Log, log_param: {base: 0}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Log, log_param: {base: -3}}"), ConfigError);
}

TEST_CASE("Log gradient") {
  const char* cfgs[] = {"{type: Log}", "{type: Log, log_param: {base: 2, scale: 3, shift: 0.5}}"};
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    auto t = test::make_layer(cfg);
    Blob x({2, 3, 4}), y;
    Rng rng(5);
    test::fill_uniform(x, rng, 0.5f, 3.f);  // inside the domain
    test::check_gradients(*t.layer, {&x}, {&y});
  }
}

TEST_CASE("Log in place matches out of place") {
  // shift 10 keeps the Gaussian input inside the domain.
  test::check_in_place_matches_out_of_place("{type: Log, log_param: {shift: 10}}", {{3, 4, 5}});
}
