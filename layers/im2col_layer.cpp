#include "layers/im2col_layer.hpp"

#include <string>

#ifdef CREMA_WITH_CUDA
#include "layers/cuda/catalog_kernels.hpp"
#endif

namespace crema {

// Caffe's Im2col reads convolution_param without num_output.
Im2colLayer::Im2colLayer(const LayerSpec& spec)
    : Layer(spec), params_(ConvolutionParams::parse(spec.params("convolution_param"), false)) {}

void Im2colLayer::layer_setup(Context&, const BlobVec& bottom, const BlobVec&) {
  const Blob& x = *bottom[0];
  if (params_.axis < -x.num_axes() || params_.axis >= x.num_axes())
    spec_.fail("convolution_param.axis " + std::to_string(params_.axis) + " is out of range for a bottom of shape " +
               x.shape_string());
  axis_ = x.canonical_axis(params_.axis);
  geometry_ = params_.spatial_geometry(spec_);
}

void Im2colLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (x.num_axes() != axis_ + 3)
    spec_.fail("Im2col supports two spatial axes only (bottoms (N, C, H, W) with axis 1); got a bottom of shape " +
               x.shape_string() + " with axis " + std::to_string(params_.axis));
  ConvGeometry& g = geometry_;
  g.channels = x.shape(axis_);
  g.height = x.shape(axis_ + 1);
  g.width = x.shape(axis_ + 2);
  const std::vector<int> out = conv_output_size(g, g.height, g.width, spec_);
  std::vector<int> shape(x.shape().begin(), x.shape().begin() + axis_);
  shape.insert(shape.end(), {g.col_rows(), out[0], out[1]});
  top[0]->reshape(shape);
  num_ = x.count(0, axis_);
  bottom_dim_ = x.count(axis_);
  top_dim_ = top[0]->count(axis_);
}

void Im2colLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();  // x: (num, C, H, W)
  float* y = top[0]->mutable_cpu_data();   // y: (num, C kh kw, out_h, out_w)
  for (int n = 0; n < num_; ++n)
    im2col(x + static_cast<long>(n) * bottom_dim_, geometry_, y + static_cast<long>(n) * top_dim_);
}

void Im2colLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();       // dy: (num, C kh kw, out_h, out_w)
  float* dx = bottom[0]->mutable_cpu_diff();  // dx: (num, C, H, W)
  for (int n = 0; n < num_; ++n)
    col2im(dy + static_cast<long>(n) * top_dim_, geometry_, dx + static_cast<long>(n) * bottom_dim_);
}

#ifdef CREMA_WITH_CUDA
void Im2colLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  // x: (num, C, H, W); y: (num, C kh kw, out_h, out_w)
  cuda::im2col_gpu(*ctx.cuda(), num_, geometry_, geometry_.out_height(), geometry_.out_width(), bottom[0]->gpu_data(),
                   top[0]->mutable_gpu_data());
}

void Im2colLayer::backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // dy: (num, C kh kw, out_h, out_w); dx: (num, C, H, W), overwritten
  cuda::col2im_gpu(*ctx.cuda(), num_, geometry_, geometry_.out_height(), geometry_.out_width(), top[0]->gpu_diff(),
                   bottom[0]->mutable_gpu_diff());
}
#endif

CREMA_REGISTER_LAYER("Im2col", Im2colLayer);

}  // namespace crema
