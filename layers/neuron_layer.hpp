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
  bool runs_in_place(int top, int bottom) const override { return top == 0 && bottom == 0; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override {
    if (top[0] != bottom[0]) top[0]->reshape_like(*bottom[0]);
  }
};

}  // namespace crema
