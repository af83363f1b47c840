#include "layers/deconvolution_layer.hpp"

#include <string>

namespace crema {

std::vector<int> DeconvolutionLayer::output_spatial_shape(int in_h, int in_w) const {
  const ConvGeometry& g = geometry();
  const int out_h = g.stride_h * (in_h - 1) + g.extent_h() - 2 * g.pad_h;
  const int out_w = g.stride_w * (in_w - 1) + g.extent_w() - 2 * g.pad_w;
  if (out_h <= 0 || out_w <= 0)
    spec_.fail("padding crops the whole output: a " + std::to_string(in_h) + "x" + std::to_string(in_w) +
               " bottom gives " + std::to_string(out_h) + "x" + std::to_string(out_w) + "; reduce pad");
  return {out_h, out_w};
}

CREMA_REGISTER_LAYER("Deconvolution", DeconvolutionLayer);

}  // namespace crema
