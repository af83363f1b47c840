#include "layers/softmax_layer.hpp"

#include <algorithm>
#include <cmath>
#ifdef CREMA_WITH_CUDA
#include "layers/cuda/loss_kernels.hpp"
#endif

namespace crema {

SoftmaxParams SoftmaxParams::parse(MapReader r) {
  SoftmaxParams p;
  p.axis = r.get_int("axis", 1);
  r.allow({"engine"});
  r.finish();
  return p;
}

void softmax_cpu(int outer, int channels, int inner, const float* x, float* y) {
  for (int o = 0; o < outer; ++o) {
    const float* xo = x + static_cast<size_t>(o) * channels * inner;  // xo: (channels, inner)
    float* yo = y + static_cast<size_t>(o) * channels * inner;        // yo: (channels, inner)
    for (int i = 0; i < inner; ++i) {
      float max = xo[i];
      for (int c = 1; c < channels; ++c) max = std::max(max, xo[c * inner + i]);
      float sum = 0.f;
      for (int c = 0; c < channels; ++c) {
        yo[c * inner + i] = std::exp(xo[c * inner + i] - max);
        sum += yo[c * inner + i];
      }
      for (int c = 0; c < channels; ++c) yo[c * inner + i] /= sum;
    }
  }
}

SoftmaxLayer::SoftmaxLayer(const LayerSpec& spec)
    : Layer(spec), params_(SoftmaxParams::parse(spec.params("softmax_param"))) {}

void SoftmaxLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const int axis = bottom[0]->canonical_axis(params_.axis);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  if (top[0] != bottom[0]) top[0]->reshape_like(*bottom[0]);
}

void SoftmaxLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  softmax_cpu(outer_, channels_, inner_, bottom[0]->cpu_data(), top[0]->mutable_cpu_data());
}

void SoftmaxLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* y = top[0]->cpu_data();        // y: (outer, channels, inner)
  const float* dy = top[0]->cpu_diff();       // dy: (outer, channels, inner)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (outer, channels, inner), may alias dy
  const int inner = inner_;
  for (int o = 0; o < outer_; ++o) {
    const size_t offset = static_cast<size_t>(o) * channels_ * inner;
    const float* yo = y + offset;    // yo: (channels, inner)
    const float* dyo = dy + offset;  // dyo: (channels, inner)
    float* dxo = dx + offset;        // dxo: (channels, inner)
    for (int i = 0; i < inner; ++i) {
      // The dot product is complete before dx is written, so dx may alias dy.
      float dot = 0.f;
      for (int c = 0; c < channels_; ++c) dot += dyo[c * inner + i] * yo[c * inner + i];
      for (int c = 0; c < channels_; ++c) dxo[c * inner + i] = (dyo[c * inner + i] - dot) * yo[c * inner + i];
    }
  }
}

#ifdef CREMA_WITH_CUDA
void SoftmaxLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x, y: (outer, channels, inner); y may alias x
  cuda::softmax_forward_gpu(*ctx.cuda(), outer_, channels_, inner_, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void SoftmaxLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // y, dy, dx: (outer, channels, inner); dx may alias dy
  cuda::softmax_backward_gpu(*ctx.cuda(), outer_, channels_, inner_, top[0]->gpu_data(), top[0]->gpu_diff(),
                             bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Softmax", SoftmaxLayer);

}  // namespace crema
