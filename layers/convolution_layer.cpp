#include "layers/convolution_layer.hpp"

#include <string>

namespace crema {

std::vector<int> ConvolutionLayer::output_spatial_shape(int in_h, int in_w) const {
  ConvGeometry g = geometry();
  g.height = in_h;
  g.width = in_w;
  if (g.out_height() <= 0 || g.out_width() <= 0)
    spec_.fail("the kernel (" + std::to_string(g.extent_h()) + "x" + std::to_string(g.extent_w()) +
               " with dilation) does not fit the padded input (" + std::to_string(in_h + 2 * g.pad_h) + "x" +
               std::to_string(in_w + 2 * g.pad_w) + ")");
  return {g.out_height(), g.out_width()};
}

void ConvolutionLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec& top) {
  const float* weight = blobs_[0]->cpu_data();                              // (Co, C/G, kh, kw)
  const float* bias = params_.bias_term ? blobs_[1]->cpu_data() : nullptr;  // (Co)
  for (size_t i = 0; i < bottom.size(); ++i) {
    const float* x = bottom[i]->cpu_data();  // x: (N, C, H, W)
    float* y = top[i]->mutable_cpu_data();   // y: (N, Co, out_h, out_w)
    for (int n = 0; n < num_; ++n) {
      forward_gemm(x + static_cast<long>(n) * bottom_dim_, weight, y + static_cast<long>(n) * top_dim_);
      if (bias) forward_bias(y + static_cast<long>(n) * top_dim_, bias);
    }
  }
}

void ConvolutionLayer::backward_cpu(Context&, const BlobVec& top, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  const float* weight = blobs_[0]->cpu_data();  // (Co, C/G, kh, kw)
  const bool weight_wanted = param_propagate_down(0);
  const bool bias_wanted = params_.bias_term && param_propagate_down(1);
  float* weight_diff = weight_wanted ? blobs_[0]->mutable_cpu_diff() : nullptr;  // (Co, C/G, kh, kw)
  float* bias_diff = bias_wanted ? blobs_[1]->mutable_cpu_diff() : nullptr;      // (Co)
  for (size_t i = 0; i < top.size(); ++i) {
    const float* dy = top[i]->cpu_diff();    // dy: (N, Co, out_h, out_w)
    const float* x = bottom[i]->cpu_data();  // x: (N, C, H, W)
    const bool bottom_wanted = i < propagate_down.size() && propagate_down[i];
    float* dx = bottom_wanted ? bottom[i]->mutable_cpu_diff() : nullptr;  // dx: (N, C, H, W)
    for (int n = 0; n < num_; ++n) {
      const float* dy_n = dy + static_cast<long>(n) * top_dim_;
      if (bias_diff) backward_bias(bias_diff, dy_n);
      if (weight_diff) weight_gemm(x + static_cast<long>(n) * bottom_dim_, dy_n, weight_diff);
      if (dx) backward_gemm(dy_n, weight, dx + static_cast<long>(n) * bottom_dim_);
    }
  }
}

CREMA_REGISTER_LAYER("Convolution", ConvolutionLayer);

}  // namespace crema
