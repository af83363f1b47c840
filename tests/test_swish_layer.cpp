#include "elementwise_test_util.hpp"

using namespace crema;

// sigmoid(2) = 0.88079708, sigmoid(-1) = 0.26894142; sigmoid'(2) = 0.10499359.

TEST_CASE("Swish forward and derivative with the default beta 1") {
  // dy/dx = s + x s (1 - s): 0.5 at 0; 0.88079708 + 2 * 0.10499359 at 2;
  // 0.26894142 - 0.19661193 at -1.
  test::check_elementwise("{type: Swish}", {0, 2, -1}, {0, 1.76159416f, -0.26894142f},
                          {0.5f, 1.09078425f, 0.07232949f});
}

TEST_CASE("Swish swish_param.beta scales the sigmoid's argument") {
  // beta 2 at x = 1: y = sigmoid(2); dy/dx = s + beta x s (1 - s).
  test::check_elementwise("{type: Swish, swish_param: {beta: 2}}", {1, 0}, {0.88079708f, 0},
                          {1.09078425f, 0.5f});
}

TEST_CASE("Swish gradient") {
  for (const char* cfg : {"{type: Swish}", "{type: Swish, swish_param: {beta: 1.7}}"}) {
    CAPTURE(cfg);
    test::check_gradients(cfg, {{2, 3, 4}});
  }
}

TEST_CASE("Swish in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: Swish, swish_param: {beta: 0.5}}", {{3, 4, 5}});
}
