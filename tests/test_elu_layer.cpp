#include "elementwise_test_util.hpp"

using namespace crema;

// e^-1 = 0.36787944, e^-2 = 0.13533528.

TEST_CASE("ELU forward and derivative with the default alpha 1") {
  test::check_elementwise("{type: ELU}", {-1, 0, 2}, {-0.63212056f, 0, 2}, {0.36787944f, 1, 1});
}

TEST_CASE("ELU elu_param.alpha scales the negative side, and x = 0 takes the negative branch") {
  // y = 0.5 (e^x - 1) for x <= 0; dy/dx = y + 0.5 there, which is 0.5 at x = 0 as in Caffe.
  test::check_elementwise("{type: ELU, elu_param: {alpha: 0.5}}", {-2, -1, 0, 0.5f, 3},
                          {-0.43233236f, -0.31606028f, 0, 0.5f, 3}, {0.06766764f, 0.18393972f, 0.5f, 1, 1});
}

TEST_CASE("ELU gradient") {
  const char* cfgs[] = {"{type: ELU}", "{type: ELU, elu_param: {alpha: 0.3}}", "{type: ELU, elu_param: {alpha: -0.4}}"};
  for (const char* cfg : cfgs) {
    CAPTURE(cfg);
    test::GradCheck opt;
    opt.kink_range = 0.02f;
    test::check_gradients(cfg, {{2, 3, 4}}, opt);
  }
}

TEST_CASE("ELU in place matches out of place") {
  test::check_in_place_matches_out_of_place("{type: ELU, elu_param: {alpha: 0.7}}", {{3, 4, 5}});
}

TEST_CASE("ELU with a negative alpha refuses to run in place") {
  auto t = test::make_layer("{type: ELU, elu_param: {alpha: -0.5}}");
  Blob x({4});
  Context ctx(1);
  CHECK_THROWS_AS(t.layer->setup(ctx, {&x}, {&x}), ConfigError);
}
