#include "layers/param_blobs.hpp"

#include <memory>

namespace crema {

void setup_param_blobs(const LayerSpec& spec, std::vector<BlobPtr>& blobs, const std::vector<ParamBlobSpec>& wanted,
                       Rng& rng) {
  if (blobs.empty()) {
    for (const auto& w : wanted) {
      blobs.push_back(std::make_shared<Blob>(w.shape));
      fill(w.filler, *blobs.back(), rng);
    }
    return;
  }
  if (blobs.size() != wanted.size())
    spec.fail("holds " + std::to_string(blobs.size()) + " parameter blob(s) but the layer needs " +
              std::to_string(wanted.size()) + " (check bias_term)");
  for (size_t i = 0; i < wanted.size(); ++i)
    if (blobs[i]->shape() != wanted[i].shape)
      spec.fail(wanted[i].what + " blob has shape " + blobs[i]->shape_string() + " but the layer needs " +
                shape_string(wanted[i].shape));
}

}  // namespace crema
