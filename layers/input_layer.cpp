#include "layers/input_layer.hpp"

namespace crema {

std::vector<std::vector<int>> parse_shapes(MapReader& r, const std::string& key) {
  std::vector<std::vector<int>> shapes;
  for (auto& s : r.subs(key)) {
    shapes.push_back(s.get_ints("dim"));
    for (int d : shapes.back())
      if (d < 0) s.fail("dim", "dimensions must not be negative");
    s.finish();
  }
  return shapes;
}

InputLayer::InputLayer(const LayerSpec& spec) : Layer(spec) {
  MapReader r = spec.params("input_param");
  shapes_ = parse_shapes(r, "shape");
  r.finish();
}

void InputLayer::layer_setup(Context&, const BlobVec&, const BlobVec& top) {
  if (shapes_.size() != 1 && shapes_.size() != top.size())
    spec_.fail("input_param needs one shape for all tops or one per top (" + std::to_string(top.size()) + "), got " +
               std::to_string(shapes_.size()));
  for (size_t i = 0; i < top.size(); ++i) top[i]->reshape(shapes_[shapes_.size() == 1 ? 0 : i]);
}

CREMA_REGISTER_LAYER("Input", InputLayer);

}  // namespace crema
