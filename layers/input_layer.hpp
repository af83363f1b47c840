// Input: tops of fixed shapes that the caller fills (deploy nets, `crema time`).
#pragma once

#include <vector>

#include "engine/layer.hpp"

namespace crema {

// Reads Caffe's BlobShape messages: {dim: [64, 1, 28, 28]}.
std::vector<std::vector<int>> parse_shapes(MapReader& r, const std::string& key);

class InputLayer : public Layer {
 public:
  explicit InputLayer(const LayerSpec& spec);
  const char* type() const override { return "Input"; }
  // The caller fills the tops on either device; forward computes nothing.
  bool supports(const Device& d) const override { return cpu_or_cuda(d); }
  int exact_num_bottom() const override { return 0; }
  int min_top() const override { return 1; }
  bool is_data() const override { return true; }
  void reshape(const BlobVec&, const BlobVec&) override {}

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context&, const BlobVec&, const BlobVec&) override {}
  void forward_gpu(Context&, const BlobVec&, const BlobVec&) override {}

 private:
  std::vector<std::vector<int>> shapes_;
};

}  // namespace crema
