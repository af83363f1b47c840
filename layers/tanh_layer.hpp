// TanH: y = tanh(x). dy/dx = 1 - y^2 needs only the top, so the layer runs in place.
#pragma once

#include "engine/layer.hpp"

namespace crema {

class TanHLayer : public Layer {
 public:
  explicit TanHLayer(const LayerSpec& spec);
  const char* type() const override { return "TanH"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
};

}  // namespace crema
