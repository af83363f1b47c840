// Tile: repeats the bottom `tiles` times along tile_param.axis (default 1); the whole
// block from that axis on is repeated, so (N, C, H, W) tiled 2x on axis 1 is
// (N, 2C, H, W) holding x[n] twice. Backward sums the gradients of all copies.
#pragma once

#include "engine/layer.hpp"

namespace crema {

struct TileParams {
  int axis = 1;
  int tiles = 0;  // required, positive
  static TileParams parse(MapReader r);
};

class TileLayer : public Layer {
 public:
  explicit TileLayer(const LayerSpec& spec);
  const char* type() const override { return "Tile"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  TileParams params_;
  // The bottom seen as (outer_, inner_) with inner_ the count from the axis on.
  int outer_ = 0, inner_ = 0;
};

}  // namespace crema
