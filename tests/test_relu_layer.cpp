#include "layer_test_util.hpp"

using namespace crema;

TEST_CASE("ReLU forward clamps negatives, scaled by negative_slope") {
  auto t = test::make_layer("{type: ReLU, relu_param: {negative_slope: 0.25}}");
  Blob x({2, 3}), y;
  const float in[] = {-2, -0.5f, 0, 0.5f, 1, 3};
  std::copy(in, in + 6, x.mutable_cpu_data());
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
  const float want[] = {-0.5f, -0.125f, 0, 0.5f, 1, 3};
  for (int i = 0; i < 6; ++i) CHECK(y.cpu_data()[i] == doctest::Approx(want[i]));
}

TEST_CASE("ReLU gradient") {
  for (const char* cfg : {"{type: ReLU}", "{type: ReLU, relu_param: {negative_slope: 0.1}}"}) {
    CAPTURE(std::string(cfg));
    test::GradCheck opt;
    opt.kink_range = 0.02f;
    test::check_gradients(cfg, {.shape = {2, 3, 4, 5}}, opt);
  }
}
