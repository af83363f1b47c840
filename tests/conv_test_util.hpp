// What the Convolution and Deconvolution tests share: one forward pass with
// hand-set parameters, a comparison against a reference computed by definition
// (each test file brings its own), and the gradient check over a table of cases.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "layer_test_util.hpp"

namespace crema::test {

// Kernel, padding, stride, dilation (each h, w) and group of a reference computation.
struct DirectConv {
  int kh, kw, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, group;
};

using ParamValues = std::vector<std::pair<std::vector<int>, std::vector<float>>>;

// Sets the layer `yaml` up on x -> y with these parameter blobs (given before
// setup, so they are kept) and runs one forward pass.
inline void run_forward(const std::string& yaml, Blob& x, Blob& y, const ParamValues& params) {
  auto t = make_layer(yaml);
  for (const auto& [shape, data] : params) {
    auto b = std::make_shared<Blob>(shape);
    set_values(*b, data);
    t.layer->blobs().push_back(b);
  }
  Context ctx(1);
  t.layer->setup(ctx, {&x}, {&y});
  t.layer->forward(ctx, {&x}, {&y});
}

// `type` ("Convolution", "Deconvolution") with convolution_param `params` plus
// Gaussian weight and bias fillers.
inline LayerUnderTest make_gaussian_conv(const std::string& type, const std::string& params) {
  return make_layer("{type: " + type + ", convolution_param: {" + params +
                    ", weight_filler: {type: gaussian}, bias_filler: {type: gaussian}}}");
}

struct ConvCase {
  const char* params;
  std::vector<int> shape;
  DirectConv direct;
};
using ConvReference = std::vector<float> (*)(const Blob& x, const Blob& w, const Blob* b, const DirectConv& g);

// Every case on a Gaussian bottom against `reference` with the layer's own weights.
inline void check_against_reference(const std::string& type, const std::vector<ConvCase>& cases,
                                    ConvReference reference) {
  for (const auto& c : cases) {
    const std::string params = c.params;
    CAPTURE(params);
    auto t = make_gaussian_conv(type, params);
    Blob x(c.shape), y;
    Rng rng(5);
    fill_gaussian(x, rng);
    Context ctx(2);
    t.layer->setup(ctx, {&x}, {&y});
    t.layer->forward(ctx, {&x}, {&y});
    check_values(y, reference(x, *t.layer->blobs()[0], t.layer->blobs()[1].get(), c.direct));
  }
}

struct ConvGradCase {
  const char* params;
  std::vector<int> shape;
  int bottoms;  // 1, or 2 for two bottom/top pairs sharing the weights
};

inline void check_conv_gradients(const std::string& type, const std::vector<ConvGradCase>& cases) {
  for (const auto& c : cases) {
    const std::string params = c.params;
    CAPTURE(params);
    auto t = make_gaussian_conv(type, params);
    Rng rng(13);
    Blob x0(c.shape), x1(c.shape), y0, y1;
    fill_gaussian(x0, rng);
    fill_gaussian(x1, rng);
    BlobVec bottom = {&x0}, top = {&y0};
    if (c.bottoms == 2) {
      bottom.push_back(&x1);
      top.push_back(&y1);
    }
    check_gradients(*t.layer, bottom, top);
  }
}

}  // namespace crema::test
