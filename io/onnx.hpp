// ONNX export: a net built for inference, with its weights, written as an ONNX model
// (opset 17) that onnxruntime, TensorRT, OpenVINO and the other ONNX runtimes load.
// The model is encoded here with pb::Writer (onnx.proto: ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto), without libonnx.
//
// Each Caffe layer becomes the ONNX operators that compute the same numbers (README,
// *ONNX export*, lists them); shapes are the net's own, so the batch size is the one its
// Input or data layer declares. Caffe's pooling geometry is reproduced exactly: the windows that
// ceil rounding adds at the bottom/right become extra end padding, and average pooling
// divides as Caffe does (explicit zero padding, then an average over what lies inside
// it). A layer with no ONNX counterpart here is refused by name.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace crema {
class Net;
}

namespace crema::io {

// The model's inputs and outputs: the net's blob, the ONNX tensor that holds it (the
// blob's name unless it is both an input and an output), its shape.
struct OnnxTensor {
  std::string blob, tensor;
  std::vector<int> shape;
};
struct OnnxModel {
  std::vector<OnnxTensor> inputs, outputs;
};

// Writes `net` (a TEST-phase net, weights loaded) to `path`, atomically: its layers but
// the losses, Accuracy and Silence (with what reads their tops, and the label copies only
// they read); inputs are the tops of its Input and data layers that the model reads (the
// values the data layer hands the net, after transform_param); outputs are the values no
// kept layer reads (a deploy net's `prob`, a training net's logits), in net order. Throws Error naming
// the first layer that cannot be exported.
OnnxModel save_onnx(const Net& net, const std::string& path, const std::string& producer_version);

// The layer types save_onnx translates.
const std::vector<std::string>& onnx_exportable_types();

}  // namespace crema::io
