// Element-wise layers (Caffe's NeuronLayer): one bottom, one top of the same shape,
// free to run in place (top == bottom).
#pragma once

#include <string>

#include "engine/layer.hpp"

namespace crema {

class NeuronLayer : public Layer {
 public:
  using Layer::Layer;
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override {
    if (top[0] != bottom[0]) top[0]->reshape_like(*bottom[0]);
  }
};

// Reads a *_param message whose only key is Caffe's `engine` choice (CAFFE/CUDNN),
// so that such files load and a misspelt key is still reported.
inline void read_engine_only_params(const LayerSpec& spec, const std::string& key) {
  MapReader r = spec.params(key);
  r.allow({"engine"});
  r.finish();
}

}  // namespace crema
