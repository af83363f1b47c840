#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("Exp forward with the defaults is e^x") {
  test::check_elementwise("{type: Exp}", {0, 1, -1}, {1, 2.71828183f, 0.36787944f}, {1, 2.71828183f, 0.36787944f});
}

TEST_CASE("Exp base, scale and shift: y = base^(shift + scale x)") {
  // 2^(1 + 3x); dy/dx = 3 ln 2 y = 2.07944154 y.
  test::check_elementwise("{type: Exp, exp_param: {base: 2, scale: 3, shift: 1}}", {0, 1, -1}, {2, 16, 0.25f},
                          {4.15888308f, 33.2710647f, 0.51986039f});
  // base -1 means e: e^(1 + 0.5x) at 2 is e^2; dy/dx = 0.5 y.
  test::check_elementwise("{type: Exp, exp_param: {scale: 0.5, shift: 1}}", {2}, {7.3890561f}, {3.69452805f});
}

TEST_CASE("Exp rejects a base that is neither positive nor -1") {
  CHECK_THROWS_AS(test::make_layer("{type: Exp, exp_param: {base: 0}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Exp, exp_param: {base: -2}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Exp, exp_param: {bse: 2}}"), ConfigError);
}

TEST_CASE("Exp gradient") {
  for (const char* cfg : {"{type: Exp}", "{type: Exp, exp_param: {base: 3, scale: 0.5, shift: -1}}"}) {
    CAPTURE(cfg);
    test::check_gradients(cfg, {{2, 3, 4}});
  }
}

TEST_CASE("Exp in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: Exp, exp_param: {base: 2, scale: 2}}", {{3, 4, 5}});
}
