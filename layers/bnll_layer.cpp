#include "layers/bnll_layer.hpp"

#include <algorithm>
#include <cmath>

namespace crema {

namespace {
// Beyond this, e^x / (1 + e^x) is 1 in float and e^x would soon overflow.
constexpr float kBNLLThreshold = 50.f;
}  // namespace

void BNLLLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  input_.forward(*bottom[0], *top[0], [](float x) {
    return x > 0.f ? x + std::log(1.f + std::exp(-x)) : std::log(1.f + std::exp(x));
  });
}

void BNLLLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  input_.backward(*top[0], *bottom[0], [](float x) {
    const float e = std::exp(std::min(x, kBNLLThreshold));
    return e / (e + 1.f);
  });
}

CREMA_REGISTER_LAYER("BNLL", BNLLLayer);

}  // namespace crema
