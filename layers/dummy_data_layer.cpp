#include "layers/dummy_data_layer.hpp"

#include "layers/input_layer.hpp"

namespace crema {

DummyDataLayer::DummyDataLayer(const LayerSpec& spec) : Layer(spec) {
  MapReader r = spec.params("dummy_data_param");
  for (auto& f : r.subs("data_filler")) fillers_.push_back(FillerSpec::parse(f));
  shapes_ = parse_shapes(r, "shape");
  // Legacy 4-D form: num/channels/height/width, each repeated per top.
  const auto num = r.get_ints("num"), ch = r.get_ints("channels"), h = r.get_ints("height"), w = r.get_ints("width");
  if (!num.empty()) {
    if (!shapes_.empty()) r.fail("num", "give either shape or num/channels/height/width, not both");
    if (ch.size() != num.size() || h.size() != num.size() || w.size() != num.size())
      r.fail("num", "num, channels, height and width need the same number of values");
    for (size_t i = 0; i < num.size(); ++i) shapes_.push_back({num[i], ch[i], h[i], w[i]});
  }
  r.finish();
}

void DummyDataLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  const size_t n = top.size();
  if (shapes_.size() != 1 && shapes_.size() != n)
    spec_.fail("dummy_data_param needs one shape for all tops or one per top (" + std::to_string(n) + ")");
  if (fillers_.size() > 1 && fillers_.size() != n)
    spec_.fail("dummy_data_param has " + std::to_string(fillers_.size()) + " data_filler entries for " +
               std::to_string(n) + " top(s): give none (constant 0), one shared by all tops, or one per top");
  if (fillers_.empty()) fillers_.push_back(FillerSpec{});  // constant 0
  refill_.clear();
  for (size_t i = 0; i < n; ++i) {
    top[i]->reshape(shapes_[shapes_.size() == 1 ? 0 : i]);
    const FillerSpec& f = fillers_[fillers_.size() == 1 ? 0 : i];
    refill_.push_back(f.type != "constant");
    fill(f, *top[i], ctx.rng());
  }
}

void DummyDataLayer::forward_cpu(Context& ctx, const BlobVec&, const BlobVec& top) {
  for (size_t i = 0; i < top.size(); ++i)
    if (refill_[i]) fill(fillers_[fillers_.size() == 1 ? 0 : i], *top[i], ctx.rng());
}

#ifdef CREMA_WITH_CUDA
void DummyDataLayer::forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) {
  forward_cpu(ctx, bottom, top);  // the host's stream: the CPU path's values
  for (size_t i = 0; i < top.size(); ++i)
    if (refill_[i]) top[i]->gpu_data();  // the new values go to the device now, in one copy
}
#endif

CREMA_REGISTER_LAYER("DummyData", DummyDataLayer);

}  // namespace crema
