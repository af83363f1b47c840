// Helpers for tests that check a whole Net's gradients.
#pragma once

#include "engine/net.hpp"

namespace crema::test {

// d(total loss)/d(element i of b) by central differences of the net's forward.
inline double numeric_derivative(Net& net, Context& ctx, Blob& b, int i, float h = 5e-3f) {
  const float x0 = b.cpu_data()[i];
  b.mutable_cpu_data()[i] = x0 + h;
  const double fp = net.forward(ctx);
  b.mutable_cpu_data()[i] = x0 - h;
  const double fm = net.forward(ctx);
  b.mutable_cpu_data()[i] = x0;
  return (fp - fm) / (2.0 * h);
}

}  // namespace crema::test
