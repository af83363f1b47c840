#include "layers/silence_layer.hpp"

namespace crema {

void SilenceLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate_down[i]) bottom[i]->set_diff(0.f);
}

CREMA_REGISTER_LAYER("Silence", SilenceLayer);

}  // namespace crema
