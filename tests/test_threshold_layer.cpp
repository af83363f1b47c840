#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("Threshold forward is 1 strictly above the threshold, else 0, with a zero gradient") {
  test::check_elementwise("{type: Threshold, threshold_param: {threshold: 0.5}}", {0.2f, 0.5f, 0.7f, -1},
                          {0, 0, 1, 0}, {0, 0, 0, 0});
  test::check_elementwise("{type: Threshold}", {0, 1e-6f, -1e-6f}, {0, 1, 0}, {0, 0, 0});
}

TEST_CASE("Threshold in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: Threshold, threshold_param: {threshold: 0.1}}", {{3, 4, 5}});
}
