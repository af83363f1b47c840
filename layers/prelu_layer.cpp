#include "layers/prelu_layer.hpp"

#include <string>

#include "layers/param_blobs.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/neuron_kernels.hpp"
#endif

namespace crema {

PReLUParams PReLUParams::parse(MapReader r) {
  PReLUParams p;
  p.channel_shared = r.get_bool("channel_shared", false);
  const bool has_filler = r.has("filler");
  p.filler = FillerSpec::parse(r.sub("filler"));
  if (!has_filler) p.filler.value = 0.25f;  // Caffe's default slope
  r.allow({"engine"});
  r.finish();
  return p;
}

PReLULayer::PReLULayer(const LayerSpec& spec)
    : NeuronLayer(spec), params_(PReLUParams::parse(spec.params("prelu_param"))) {}

void PReLULayer::layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec&) {
  const Blob& x = *bottom[0];
  if (x.num_axes() < 2) spec_.fail("PReLU needs a bottom with at least 2 axes (N, C, ...), got " + x.shape_string());
  channels_ = x.shape(1);
  const std::vector<int> shape = params_.channel_shared ? std::vector<int>{} : std::vector<int>{channels_};
  setup_param_blobs(spec_, blobs_, {{"slope", shape, params_.filler}}, ctx.rng());
}

void PReLULayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (x.num_axes() < 2 || x.shape(1) != channels_)
    spec_.fail("PReLU layer was set up for " + std::to_string(channels_) + " channels; got a bottom of shape " +
               x.shape_string());
  dim_ = x.count(2);
  NeuronLayer::reshape(bottom, top);
}

void PReLULayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  input_.keep(*bottom[0], *top[0]);
  const int n = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();      // x: (N, C, dim)
  const float* a = blobs_[0]->cpu_data();      // a: (C) or (1)
  float* y = top[0]->mutable_cpu_data();       // y: (N, C, dim), may alias x
  for (int i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : a[slope_index(i)] * x[i];
}

void PReLULayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const int n = bottom[0]->count();
  const float* x = input_.data(*bottom[0], *top[0]);  // x: (N, C, dim), as at forward
  const float* dy = top[0]->cpu_diff();               // dy: (N, C, dim)
  if (param_propagate_down(0)) {
    float* da = blobs_[0]->mutable_cpu_diff();  // da: (C) or (1); accumulates
    for (int i = 0; i < n; ++i)
      if (x[i] <= 0.f) da[slope_index(i)] += dy[i] * x[i];
  }
  if (propagate_down[0]) {
    const float* a = blobs_[0]->cpu_data();     // a: (C) or (1)
    float* dx = bottom[0]->mutable_cpu_diff();  // dx: (N, C, dim), may alias dy
    for (int i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : a[slope_index(i)] * dy[i];
  }
}

#ifdef CREMA_WITH_CUDA
void PReLULayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  input_.keep_gpu(*ctx.cuda(), *bottom[0], *top[0]);
  const int64_t n = bottom[0]->count();
  // channel_shared is one channel holding all of C * dim.
  const int channels = params_.channel_shared ? 1 : channels_;
  const int64_t dim = params_.channel_shared ? static_cast<int64_t>(channels_) * dim_ : dim_;
  cuda::prelu_forward(*ctx.cuda(), n, channels, dim, blobs_[0]->gpu_data(), bottom[0]->gpu_data(),
                      top[0]->mutable_gpu_data());
}

void PReLULayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const int64_t n = bottom[0]->count();
  const int channels = params_.channel_shared ? 1 : channels_;
  const int64_t dim = params_.channel_shared ? static_cast<int64_t>(channels_) * dim_ : dim_;
  const float* x = input_.gpu_data(*bottom[0], *top[0]);  // x: (N, C, dim), as at forward
  if (param_propagate_down(0))
    cuda::prelu_backward_slope(*ctx.cuda(), n, channels, dim, x, top[0]->gpu_diff(), blobs_[0]->mutable_gpu_diff());
  if (propagate_down[0])
    cuda::prelu_backward_input(*ctx.cuda(), n, channels, dim, blobs_[0]->gpu_data(), x, top[0]->gpu_diff(),
                               bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("PReLU", PReLULayer);

}  // namespace crema
