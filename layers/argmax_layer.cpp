#include "layers/argmax_layer.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#ifdef CREMA_WITH_CUDA
#include "engine/cuda/math_kernels.hpp"
#include "layers/cuda/misc_kernels.hpp"
#endif

namespace crema {

ArgMaxParams ArgMaxParams::parse(MapReader r) {
  ArgMaxParams p;
  p.out_max_val = r.get_bool("out_max_val", false);
  p.top_k = r.get_int("top_k", 1);
  if (r.has("axis")) p.axis = r.get_int("axis", 0);
  r.finish();
  if (p.top_k < 1) r.fail("top_k", "must be at least 1, got " + std::to_string(p.top_k));
  return p;
}

ArgMaxLayer::ArgMaxLayer(const LayerSpec& spec)
    : Layer(spec), params_(ArgMaxParams::parse(spec.params("argmax_param"))) {}

void ArgMaxLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) spec_.fail("ArgMax layer does not allow in-place computation; give the top its own name");
  const Blob& x = *bottom[0];
  const int k = params_.top_k;
  std::vector<int> shape;
  if (params_.axis) {
    const int axis = x.canonical_axis(*params_.axis);
    dim_ = x.shape(axis);
    inner_ = x.count(axis + 1);
    if (k > dim_)
      spec_.fail("argmax_param.top_k (" + std::to_string(k) + ") must be less than or equal to the size of axis " +
                 std::to_string(axis) + " (" + std::to_string(dim_) + ", bottom shape " + x.shape_string() + ")");
    shape = x.shape();
    shape[static_cast<size_t>(axis)] = k;
  } else {
    if (x.num_axes() == 0) spec_.fail("ArgMax needs a bottom with a first (batch) axis; got a scalar");
    dim_ = x.count(1);
    inner_ = 1;
    if (k > dim_)
      spec_.fail("argmax_param.top_k (" + std::to_string(k) + ") must be less than or equal to the number of values " +
                 "per sample (" + std::to_string(dim_) + ", bottom shape " + x.shape_string() + ")");
    // Caffe's (N, 1 or 2, top_k, 1...) with at least three axes.
    shape.assign(static_cast<size_t>(std::max(x.num_axes(), 3)), 1);
    shape[0] = x.shape(0);
    shape[1] = params_.out_max_val ? 2 : 1;
    shape[2] = k;
  }
  top[0]->reshape(shape);
}

void ArgMaxLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (outer, dim, inner)
  float* y = top[0]->mutable_cpu_data();   // y: (outer, top_k, inner), or (N, 2, top_k) for indices and values
  const int k = params_.top_k;
  const int outer = outer_count(*bottom[0]);
  std::vector<std::pair<float, int>> ranked(static_cast<size_t>(dim_));
  for (int o = 0; o < outer; ++o) {
    for (int i = 0; i < inner_; ++i) {
      for (int j = 0; j < dim_; ++j)
        ranked[static_cast<size_t>(j)] = {x[(static_cast<size_t>(o) * dim_ + static_cast<size_t>(j)) * inner_ + i], j};
      // Comparing pairs puts the larger index first among equal values, as Caffe does.
      std::partial_sort(ranked.begin(), ranked.begin() + k, ranked.end(), std::greater<std::pair<float, int>>());
      for (int j = 0; j < k; ++j) {
        const auto& [value, index] = ranked[static_cast<size_t>(j)];
        if (!params_.axis && params_.out_max_val) {
          y[2 * o * k + j] = static_cast<float>(index);
          y[2 * o * k + k + j] = value;
        } else {
          y[(static_cast<size_t>(o) * k + static_cast<size_t>(j)) * inner_ + i] =
              params_.out_max_val ? value : static_cast<float>(index);
        }
      }
    }
  }
}

void ArgMaxLayer::backward_cpu(Context&, const BlobVec&, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (propagate_down[0]) bottom[0]->set_diff(0.f);
}

#ifdef CREMA_WITH_CUDA
void ArgMaxLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x: (outer, dim, inner); y: (outer, top_k, inner), or (N, 2, top_k) for indices and values
  cuda::argmax_forward(*ctx.cuda(), outer_count(*bottom[0]), dim_, inner_, params_.top_k,
                       !params_.axis && params_.out_max_val, params_.out_max_val, bottom[0]->gpu_data(),
                       top[0]->mutable_gpu_data());
}

void ArgMaxLayer::backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  // As on the CPU: indices have no gradient, so zeros.
  if (propagate_down[0]) cuda::gpu_set(*ctx.cuda(), bottom[0]->count(), 0.f, bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("ArgMax", ArgMaxLayer);

}  // namespace crema
