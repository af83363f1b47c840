#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("Clip forward clamps to min and max, the gradient passes at the bounds too") {
  test::check_elementwise("{type: Clip, clip_param: {min: -1, max: 2}}", {-3, -1, 0.5f, 2, 5}, {-1, -1, 0.5f, 2, 2},
                          {0, 1, 1, 1, 0});
}

TEST_CASE("Clip requires min and max, with min <= max") {
  CHECK_THROWS_AS(test::make_layer("{type: Clip, clip_param: {min: 0}}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Clip, clip_param: {max: 0}}"), ConfigError);
  // The missing min is said, not the max beside it taken for a misspelt min.
  CHECK_THROWS_WITH_AS(test::make_layer("{type: Clip, clip_param: {max: 6}}"),
                       doctest::Contains("required key 'min' is missing"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Clip}"), ConfigError);
  CHECK_THROWS_AS(test::make_layer("{type: Clip, clip_param: {min: 1, max: 0}}"), ConfigError);
  CHECK_NOTHROW(test::make_layer("{type: Clip, clip_param: {min: 1, max: 1}}"));
}

TEST_CASE("Clip gradient") {
  // One bound inside the data at a time, skipped by the kink rule.
  test::GradCheck upper;
  upper.kink = 0.5f;
  upper.kink_range = 0.02f;
  test::check_gradients("{type: Clip, clip_param: {min: -10, max: 0.5}}", {{2, 3, 4}}, upper);
  test::GradCheck lower;
  lower.kink = -0.5f;
  lower.kink_range = 0.02f;
  test::check_gradients("{type: Clip, clip_param: {min: -0.5, max: 10}}", {{2, 3, 4}}, lower);
}

TEST_CASE("Clip in place matches out of place, gradient included") {
  // In place the top overwrites x; the gradient must still be zero outside [min, max].
  test::check_in_place_matches_out_of_place("{type: Clip, clip_param: {min: -0.5, max: 0.5}}", {{3, 4, 5}});
}
