#include "layers/batch_reindex_layer.hpp"

#include <algorithm>
#include <string>

#include "engine/math.hpp"
#include "layers/index_value.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

namespace {
const char* const kIndexAdvice = "BatchReindex indices (bottom 1) name items of bottom 0's batch";
}  // namespace

void BatchReindexLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (bottom[1]->num_axes() != 1)
    spec_.fail("the indices (bottom 1) must be 1-D, got shape " + bottom[1]->shape_string());
  if (x.num_axes() < 1) spec_.fail("bottom 0 must have a batch axis, got a scalar");
  std::vector<int> shape = x.shape();
  shape[0] = bottom[1]->shape(0);
  top[0]->reshape(shape);
  index_check_.reshape({3});
#ifdef CREMA_WITH_CUDA
  reshape_index_scratch(*this, sort_scratch_, top[0]->shape(0), bottom[0]->shape(0));
#endif
}

int BatchReindexLayer::source(const BlobVec& bottom, int k) const {
  return read_index(*this, bottom[1]->cpu_data()[k], bottom[0]->shape(0), k, *bottom[1], 1, kIndexAdvice);
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

#ifdef CREMA_WITH_CUDA
void BatchReindexLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  const cuda::CudaContext& c = *ctx.cuda();
  const int items = top[0]->shape(0), inner = top[0]->count(1), num = bottom[0]->shape(0);
  // index: (K); checked on the device, only the verdict comes back (waits for the stream).
  const cuda::BadIndex bad =
      cuda::find_bad_index(c, items, bottom[1]->gpu_data(), num, cuda::IndexRule::index,
                           index_check_.mutable_gpu_data());
  if (bad.position >= 0) {
    read_index(*this, bad.value, num, static_cast<long>(bad.position), *bottom[1], 1,
               kIndexAdvice);  // throws the CPU's message
    throw Error(std::string(type()) + " layer '" + name() + "': an index is out of range; " + kIndexAdvice);
  }
  // x: (N, inner); y: (K, inner)
  cuda::batch_reindex_forward(c, items, inner, bottom[0]->gpu_data(), bottom[1]->gpu_data(),
                             top[0]->mutable_gpu_data());
}

void BatchReindexLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const cuda::CudaContext& c = *ctx.cuda();
  if (propagate_down.size() > 1 && propagate_down[1])  // indices: no gradient
    cuda::gpu_set(c, bottom[1]->count(), 0.f, bottom[1]->mutable_gpu_diff());
  if (!propagate_down[0]) return;
  const int items = top[0]->shape(0), inner = top[0]->count(1);
  // dy: (K, inner); index: (K), checked by forward; dx: (N, inner) = 0, then each item's
  // rows added in k order, as the CPU loop adds them
  float* dx = bottom[0]->mutable_gpu_diff();
  cuda::gpu_set(c, bottom[0]->count(), 0.f, dx);
  cuda::add_rows_by_index(c, items, inner, bottom[0]->shape(0), top[0]->gpu_diff(), bottom[1]->gpu_data(),
                          reinterpret_cast<int*>(sort_scratch_.mutable_gpu_data()), dx);
}
#endif

CREMA_REGISTER_LAYER("BatchReindex", BatchReindexLayer);

}  // namespace crema
