#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("BNLL forward is log(1 + e^x) and the derivative is the sigmoid") {
  // log(1 + e^-1) = 0.31326169, log 2 = 0.69314718; sigmoid(-1) = 0.26894142.
  // At +-60 neither e^x nor the threshold must overflow.
  test::check_elementwise("{type: BNLL}", {-60, -1, 0, 1, 60}, {0, 0.31326169f, 0.69314718f, 1.31326169f, 60},
                          {0, 0.26894142f, 0.5f, 0.73105858f, 1});
}

TEST_CASE("BNLL gradient") { test::check_gradients("{type: BNLL}", {{2, 3, 4}, 2.f}); }

TEST_CASE("BNLL in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: BNLL}", {{3, 4, 5}, 2.f});
}
