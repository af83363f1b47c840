#include "layers/batch_reindex_layer.hpp"

#include <algorithm>
#include <string>

#include "engine/math.hpp"
#include "layers/index_value.hpp"

namespace crema {

void BatchReindexLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (bottom[1]->num_axes() != 1)
    spec_.fail("the indices (bottom 1) must be 1-D, got shape " + bottom[1]->shape_string());
  if (x.num_axes() < 1) spec_.fail("bottom 0 must have a batch axis, got a scalar");
  std::vector<int> shape = x.shape();
  shape[0] = bottom[1]->shape(0);
  top[0]->reshape(shape);
}

int BatchReindexLayer::source(const BlobVec& bottom, int k) const {
  return read_index(*this, bottom[1]->cpu_data()[k], bottom[0]->shape(0), k,
                    "BatchReindex indices (bottom 1) must name items of bottom 0's batch");
}

void BatchReindexLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const int items = top[0]->shape(0), inner = top[0]->count(1);
  const float* x = bottom[0]->cpu_data();  // x: (N, inner)
  float* y = top[0]->mutable_cpu_data();   // y: (K, inner)
  for (int k = 0; k < items; ++k)
    cpu_copy(inner, x + static_cast<long>(source(bottom, k)) * inner, y + static_cast<long>(k) * inner);
}

void BatchReindexLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (propagate_down.size() > 1 && propagate_down[1]) bottom[1]->set_diff(0.f);  // indices: no gradient
  if (!propagate_down[0]) return;
  const int items = top[0]->shape(0), inner = top[0]->count(1);
  const float* dy = top[0]->cpu_diff();       // dy: (K, inner)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N, inner)
  std::fill(dx, dx + bottom[0]->count(), 0.f);
  for (int k = 0; k < items; ++k)
    cpu_axpy(inner, 1.f, dy + static_cast<long>(k) * inner, dx + static_cast<long>(source(bottom, k)) * inner);
}

CREMA_REGISTER_LAYER("BatchReindex", BatchReindexLayer);

}  // namespace crema
