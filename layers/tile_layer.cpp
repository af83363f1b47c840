#include "layers/tile_layer.hpp"

#include <climits>
#include <string>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

TileParams TileParams::parse(MapReader r) {
  TileParams p;
  p.axis = r.get_int("axis", 1);
  p.tiles = r.required("tiles").as_int();
  r.finish();
  if (p.tiles < 1) r.fail("tiles", "number of tiles must be positive, got " + std::to_string(p.tiles));
  return p;
}

TileLayer::TileLayer(const LayerSpec& spec) : Layer(spec), params_(TileParams::parse(spec.params("tile_param"))) {}

void TileLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) spec_.fail("Tile layer does not allow in-place computation; give the top its own name");
  const int axis = bottom[0]->canonical_axis(params_.axis);
  std::vector<int> shape = bottom[0]->shape();
  const long long tiled = static_cast<long long>(shape[static_cast<size_t>(axis)]) * params_.tiles;
  if (tiled > INT_MAX)
    spec_.fail("tiles " + std::to_string(params_.tiles) + " makes axis " + std::to_string(axis) + " " +
               std::to_string(tiled) + " long, more than a blob can hold");
  shape[static_cast<size_t>(axis)] = static_cast<int>(tiled);
  outer_ = bottom[0]->count(0, axis);
  inner_ = bottom[0]->count(axis);
  top[0]->reshape(shape);
}

void TileLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (outer, inner)
  float* y = top[0]->mutable_cpu_data();   // y: (outer, tiles, inner)
  for (int o = 0; o < outer_; ++o)
    for (int t = 0; t < params_.tiles; ++t)
      cpu_copy(inner_, x + static_cast<size_t>(o) * inner_,
               y + (static_cast<size_t>(o) * params_.tiles + static_cast<size_t>(t)) * inner_);
}

void TileLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();       // dy: (outer, tiles, inner)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (outer, inner)
  for (int o = 0; o < outer_; ++o) {
    float* dxo = dx + static_cast<size_t>(o) * inner_;                                  // dxo: (inner)
    const float* dyo = dy + static_cast<size_t>(o) * params_.tiles * inner_;            // dyo: (tiles, inner)
    cpu_copy(inner_, dyo, dxo);
    for (int t = 1; t < params_.tiles; ++t) cpu_axpy(inner_, 1.f, dyo + static_cast<size_t>(t) * inner_, dxo);
  }
}

#ifdef CREMA_WITH_CUDA
void TileLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x: (outer, inner); y: (outer, tiles, inner)
  cuda::tile_forward(*ctx.cuda(), outer_, params_.tiles, inner_, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void TileLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // dy: (outer, tiles, inner); dx: (outer, inner)
  cuda::tile_backward(*ctx.cuda(), outer_, params_.tiles, inner_, top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Tile", TileLayer);

}  // namespace crema
