// DummyData: tops of given shapes filled by fillers; constant fillers fill once,
// random ones refill on every forward (Caffe's behaviour). On a GPU the fillers still
// draw from the host's random stream, so the values match the CPU path bit for bit;
// a refilled top is then copied to the device once per forward (a constant top once).
#pragma once

#include <vector>

#include "engine/filler.hpp"
#include "engine/layer.hpp"

namespace crema {

class DummyDataLayer : public Layer {
 public:
  explicit DummyDataLayer(const LayerSpec& spec);
  const char* type() const override { return "DummyData"; }
  int exact_num_bottom() const override { return 0; }
  int min_top() const override { return 1; }
  bool is_data() const override { return true; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  void reshape(const BlobVec&, const BlobVec&) override {}

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
#endif

 private:
  std::vector<FillerSpec> fillers_;
  std::vector<std::vector<int>> shapes_;
  std::vector<bool> refill_;
};

}  // namespace crema
