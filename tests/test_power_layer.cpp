#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("Power forward: y = (shift + scale x)^power") {
  // (1 + 3x)^2; dy/dx = 6 (1 + 3x).
  test::check_elementwise("{type: Power, power_param: {power: 2, scale: 3, shift: 1}}", {0, 1, -1}, {1, 16, 4},
                          {6, 24, -12});
  // sqrt(x); dy/dx = 0.5 / sqrt(x).
  test::check_elementwise("{type: Power, power_param: {power: 0.5}}", {4, 9}, {2, 3}, {0.25f, 0.16666667f});
  // The defaults are the identity.
  test::check_elementwise("{type: Power}", {-2, 3}, {-2, 3}, {1, 1});
}

TEST_CASE("Power with power 0 or scale 0 is a constant with zero gradient") {
  test::check_elementwise("{type: Power, power_param: {power: 0, scale: 2, shift: 3}}", {-1, 5}, {1, 1}, {0, 0});
  test::check_elementwise("{type: Power, power_param: {power: 3, scale: 0, shift: 2}}", {-1, 5}, {8, 8}, {0, 0});
}

TEST_CASE("Power derivative is finite where the base is zero") {
  // Caffe computes power * y / x here, which is 0/0.
  test::check_elementwise("{type: Power, power_param: {power: 3}}", {0, 2}, {0, 8}, {0, 12});
}

TEST_CASE("Power gradient") {
  const char* cfgs[] = {
      "{type: Power, power_param: {power: 2, scale: 3, shift: 1}}",
      "{type: Power, power_param: {power: 3, scale: -0.5}}",
      "{type: Power, power_param: {power: 0.5, shift: 5}}",
      "{type: Power, power_param: {power: -1.5, scale: 2, shift: 6}}",
      "{type: Power, power_param: {scale: 2.5, shift: 1}}",
  };
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    test::check_gradients(cfg, {{2, 3, 4}});
  }
}

TEST_CASE("Power in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: Power, power_param: {power: 3, scale: 2, shift: 1}}", {{3, 4, 5}});
}
