#include "layers/absval_layer.hpp"

#include <cmath>

namespace crema {

void AbsValLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  input_.forward(*bottom[0], *top[0], [](float x) { return std::fabs(x); });
}

void AbsValLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  input_.backward(*top[0], *bottom[0], [](float x) { return x > 0.f ? 1.f : x < 0.f ? -1.f : 0.f; });
}

CREMA_REGISTER_LAYER("AbsVal", AbsValLayer);

}  // namespace crema
