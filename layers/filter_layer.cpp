#include "layers/filter_layer.hpp"

#include <algorithm>
#include <string>

#include "engine/math.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

namespace crema {

void FilterLayer::layer_setup(Context&, const BlobVec& bottom, const BlobVec& top) {
  if (top.size() != bottom.size() - 1)
    spec_.fail("Filter layer needs one top per filtered bottom (all bottoms but the last, the selector): " +
               std::to_string(bottom.size() - 1) + " top(s), got " + std::to_string(top.size()));
  selector_index_ = static_cast<int>(bottom.size()) - 1;
  first_reshape_ = true;
}

void FilterLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& selector = *bottom[static_cast<size_t>(selector_index_)];
  if (selector.num_axes() < 1) spec_.fail("the selector (the last bottom) must have a batch axis, got a scalar");
  if (selector.count() != selector.shape(0))
    spec_.fail("the selector (the last bottom) must be (N) or (N, 1, ...), one value per item; got shape " +
               selector.shape_string());
  const int n = selector.shape(0);
  for (size_t i = 0; i < top.size(); ++i)
    if (bottom[i]->num_axes() < 1 || bottom[i]->shape(0) != n)
      spec_.fail("bottom " + std::to_string(i) + " (" + bottom[i]->shape_string() +
                 ") must have as many items as the selector (" + std::to_string(n) + ")");
  kept_.clear();
  const float* select = selector.cpu_data();  // (N)
  for (int item = 0; item < n; ++item)
    if (select[item] != 0.f) kept_.push_back(item);
  const int items = first_reshape_ ? n : static_cast<int>(kept_.size());
  first_reshape_ = false;
  for (size_t i = 0; i < top.size(); ++i) {
    std::vector<int> shape = bottom[i]->shape();
    shape[0] = items;
    top[i]->reshape(shape);
  }
}

void FilterLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  for (size_t i = 0; i < top.size(); ++i) {
    const int inner = bottom[i]->count(1);
    const float* x = bottom[i]->cpu_data();  // x: (N, inner)
    float* y = top[i]->mutable_cpu_data();   // y: (kept, inner)
    for (size_t k = 0; k < kept_.size(); ++k)
      cpu_copy(inner, x + static_cast<long>(kept_[k]) * inner, y + static_cast<long>(k) * inner);
  }
}

void FilterLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (propagate_down[static_cast<size_t>(selector_index_)])
    bottom[static_cast<size_t>(selector_index_)]->set_diff(0.f);  // the selector: no gradient
  for (size_t i = 0; i < top.size(); ++i) {
    if (!propagate_down[i]) continue;
    const int inner = bottom[i]->count(1);
    const float* dy = top[i]->cpu_diff();       // dy: (kept, inner)
    float* dx = bottom[i]->mutable_cpu_diff();  // dx: (N, inner)
    std::fill(dx, dx + bottom[i]->count(), 0.f);
    for (size_t k = 0; k < kept_.size(); ++k)
      cpu_copy(inner, dy + static_cast<long>(k) * inner, dx + static_cast<long>(kept_[k]) * inner);
  }
}

#ifdef CREMA_WITH_CUDA
std::vector<FilterLayer::Run> FilterLayer::kept_runs() const {
  std::vector<Run> runs;
  for (size_t k = 0; k < kept_.size(); ++k) {
    if (!runs.empty() && runs.back().item + runs.back().length == kept_[k])
      ++runs.back().length;
    else
      runs.push_back({kept_[k], static_cast<int>(k), 1});
  }
  return runs;
}

void FilterLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const std::vector<Run> runs = kept_runs();
  for (size_t i = 0; i < top.size(); ++i) {
    const long inner = bottom[i]->count(1);
    const float* x = bottom[i]->gpu_data();  // x: (N, inner)
    float* y = top[i]->mutable_gpu_data();   // y: (kept, inner)
    for (const Run& r : runs)
      cuda::gpu_copy(*ctx.cuda(), static_cast<int>(r.length * inner), x + r.item * inner, y + r.row * inner);
  }
}

void FilterLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  Blob& selector = *bottom[static_cast<size_t>(selector_index_)];
  if (propagate_down[static_cast<size_t>(selector_index_)])
    cuda::gpu_set(c, selector.count(), 0.f, selector.mutable_gpu_diff());  // the selector: no gradient
  const std::vector<Run> runs = kept_runs();
  for (size_t i = 0; i < top.size(); ++i) {
    if (!propagate_down[i]) continue;
    const long inner = bottom[i]->count(1);
    const float* dy = top[i]->gpu_diff();       // dy: (kept, inner)
    float* dx = bottom[i]->mutable_gpu_diff();  // dx: (N, inner); dropped items get 0
    cuda::gpu_set(c, bottom[i]->count(), 0.f, dx);
    for (const Run& r : runs)
      cuda::gpu_copy(c, static_cast<int>(r.length * inner), dy + r.row * inner, dx + r.item * inner);
  }
}
#endif

CREMA_REGISTER_LAYER("Filter", FilterLayer);

}  // namespace crema
