#include "layers/split_layer.hpp"

#include "engine/math.hpp"
#include "layers/layout_sum.hpp"
#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#endif

namespace crema {

SplitLayer::SplitLayer(const LayerSpec& spec) : Layer(spec) {}

void SplitLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  for (Blob* t : top) {
    t->reshape_like(*bottom[0]);
    t->share_data(*bottom[0]);
  }
}

void SplitLayer::forward_cpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute: reshape made every top share the bottom's data.
}

void SplitLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  std::vector<SyncedMemory*> dy;
  for (Blob* t : top) dy.push_back(t->diff_memory().get());
  // Gradients from oneDNN layers, all in one layout: summed in it.
  if (sum_in_layout(dy, std::vector<float>(top.size(), 1.f), *bottom[0]->diff_memory(), diff_out_)) return;
  const int n = bottom[0]->count();
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (n)
  cpu_copy(n, top[0]->cpu_diff(), dx);        // top diffs: (n) each
  for (size_t t = 1; t < top.size(); ++t) cpu_axpy(n, 1.f, top[t]->cpu_diff(), dx);
}

#ifdef CREMA_WITH_CUDA
void SplitLayer::forward_gpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute: reshape made every top share the bottom's data.
}

void SplitLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const cuda::CudaContext& c = *ctx.cuda();
  const int n = bottom[0]->count();
  float* dx = bottom[0]->mutable_gpu_diff();       // dx: (n)
  cuda::gpu_copy(c, n, top[0]->gpu_diff(), dx);    // top diffs: (n) each
  for (size_t t = 1; t < top.size(); ++t) cuda::gpu_axpy(c, n, 1.f, top[t]->gpu_diff(), dx);
}
#endif

CREMA_REGISTER_LAYER("Split", SplitLayer);

}  // namespace crema
