// The element-wise activations with a oneDNN engine (ReLU, Sigmoid, TanH), whose
// *_param has Caffe's `engine:` key:
//   DEFAULT  on the CPU oneDNN where it computes the reference's result (AVX-512
//            code: 2-3x faster than the portable build of crema's loops on
//            activations in cache, ~10x for the exp and tanh of Sigmoid and TanH),
//            else crema's loops; on a GPU crema's CUDA kernels
//   CAFFE    crema's loops (its CUDA kernels on a GPU); CUDNN is the same, as in Caffe
//   ONEDNN   oneDNN's eltwise primitives on the CPU, refused on a GPU and where
//            oneDNN cannot compute the reference's result
// oneDNN works in the layout its input arrives in (onednn_eltwise.hpp), and so do
// the layers' own loops where they can (ReLU in place).
#pragma once

#include <memory>
#include <string>

#include "layers/engine_choice.hpp"
#include "layers/neuron_layer.hpp"
#include "layers/onednn/onednn_eltwise.hpp"

namespace crema {

// Reads a *_param message whose only key is `engine` (Sigmoid's, TanH's), so that a
// misspelt key is still reported.
Engine parse_engine_only(const LayerSpec& spec, const std::string& key);

class ActivationLayer : public NeuronLayer {
 public:
  // `key`: the *_param message holding `engine`.
  ActivationLayer(const LayerSpec& spec, const std::string& key, Engine engine, onednn::EltwiseOp op);
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool uses_onednn() const { return use_onednn_; }

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  // Run oneDNN where it was chosen, and say whether it ran.
  bool forward_onednn(const BlobVec& bottom, const BlobVec& top);
  bool backward_onednn(const BlobVec& top, const BlobVec& bottom);
  // The values backward derives the gradient from: the top (Sigmoid, TanH, as Caffe).
  virtual Blob& backward_values(const BlobVec& top, const BlobVec& /*bottom*/) const { return *top[0]; }

 private:
  std::string key_;
  Engine engine_;
  onednn::EltwiseOp op_;
  std::unique_ptr<onednn::Eltwise> onednn_;
  bool use_onednn_ = false;
};

}  // namespace crema
