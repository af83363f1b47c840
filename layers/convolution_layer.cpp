#include "layers/convolution_layer.hpp"

namespace crema {

std::vector<int> ConvolutionLayer::output_spatial_shape(int in_h, int in_w) const {
  return conv_output_size(geometry(), in_h, in_w, spec_);
}

CREMA_REGISTER_LAYER("Convolution", ConvolutionLayer);

}  // namespace crema
