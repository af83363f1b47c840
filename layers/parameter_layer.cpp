#include "layers/parameter_layer.hpp"

#include "layers/input_layer.hpp"
#include "layers/param_blobs.hpp"

namespace crema {

ParameterLayer::ParameterLayer(const LayerSpec& spec) : Layer(spec) {
  MapReader r = spec.params("parameter_param");
  // No shape is Caffe's empty BlobShape: a 0-axis blob of one value.
  const auto shapes = parse_shapes(r, "shape");
  if (shapes.size() > 1) r.fail("shape", "parameter_param takes one shape, got " + std::to_string(shapes.size()));
  if (!shapes.empty()) shape_ = shapes[0];
  r.finish();
}

void ParameterLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec&) {
  setup_param_blobs(spec_, blobs_, {{"parameter", shape_, FillerSpec{}}}, ctx.rng());
}

void ParameterLayer::reshape(const BlobVec&, const BlobVec& top) {
  top[0]->reshape(shape_);
  top[0]->share_data(*blobs_[0]);
  top[0]->share_diff(*blobs_[0]);
}

void ParameterLayer::forward_cpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute: the top is the parameter.
}

#ifdef CREMA_WITH_CUDA
void ParameterLayer::forward_gpu(Context&, const BlobVec&, const BlobVec&) {
  // Nothing to compute on any device: the top shares the parameter's memory.
}

void ParameterLayer::backward_gpu(Context&, const BlobVec&, const std::vector<bool>&, const BlobVec&) {
  // The consumers' gradients already are the parameter's (shared diff).
}
#endif

CREMA_REGISTER_LAYER("Parameter", ParameterLayer);

}  // namespace crema
