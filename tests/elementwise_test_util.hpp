// Hand-computed checks for element-wise layers: the layer `yaml` runs on a 1-D input
// x, its top must equal want_y, and backward with a top gradient of 2 must give
// 2 * want_dydx (so the top gradient is seen to scale the result).
#pragma once

#include <string>
#include <vector>

#include "layer_test_util.hpp"

namespace crema::test {

inline void check_elementwise(const std::string& yaml, const std::vector<float>& x, const std::vector<float>& want_y,
                              const std::vector<float>& want_dydx) {
  INFO(yaml);
  auto t = make_layer(yaml);
  Blob bottom({static_cast<int>(x.size())}), top;
  set_values(bottom, x);
  Context ctx(1);
  t.layer->setup(ctx, {&bottom}, {&top});
  t.layer->forward(ctx, {&bottom}, {&top});
  check_values(top, want_y);
  top.set_diff(2.f);
  bottom.set_diff(-7.f);  // must be overwritten
  t.layer->backward(ctx, {&top}, {true}, {&bottom});
  REQUIRE(want_dydx.size() == x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("dy/dx at x = " << x[i]);
    CHECK(bottom.cpu_diff()[i] == doctest::Approx(2.f * want_dydx[i]));
  }
}

}  // namespace crema::test
