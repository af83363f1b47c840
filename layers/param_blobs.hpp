// Creating a layer's learnable parameter blobs (Caffe's "blobs_"), shared by every
// layer that has weights. Caffe fills them in LayerSetUp unless the layer already
// holds blobs; crema does the same, so weights set before setup (a test's hand-made
// values, a second setup of the same layer) survive, once their shapes are checked.
#pragma once

#include <string>
#include <vector>

#include "engine/blob.hpp"
#include "engine/filler.hpp"
#include "engine/layer_spec.hpp"
#include "engine/rng.hpp"

namespace crema {

struct ParamBlobSpec {
  std::string what;  // "weight", "bias": named in shape errors
  std::vector<int> shape;
  FillerSpec filler;
};

// Makes `blobs` hold one blob per entry of `wanted`: new and filled from its filler
// when `blobs` is empty, else the existing ones, which must match in number and shape.
void setup_param_blobs(const LayerSpec& spec, std::vector<BlobPtr>& blobs, const std::vector<ParamBlobSpec>& wanted,
                       Rng& rng);

}  // namespace crema
