#include "elementwise_test_util.hpp"

using namespace crema;

TEST_CASE("AbsVal forward is |x| and the derivative is sign(x), 0 at 0") {
  test::check_elementwise("{type: AbsVal}", {-2, -0.5f, 0, 1.5f}, {2, 0.5f, 0, 1.5f}, {-1, -1, 0, 1});
}

TEST_CASE("AbsVal gradient") {
  test::GradCheck opt;
  opt.kink_range = 0.02f;
  test::check_gradients("{type: AbsVal}", {{2, 3, 4}}, opt);
}

TEST_CASE("AbsVal in place matches out of place") {
  // Caffe refuses in-place AbsVal; crema keeps the input so the gradient stays right.
  test::check_in_place_matches_out_of_place("{type: AbsVal}", {{3, 4, 5}});
}
