// ONNX export: a net built for inference, with its weights, written as an ONNX model
// (opset 17) that onnxruntime, TensorRT, OpenVINO and the other ONNX runtimes load.
// The model is encoded here with pb::Writer (onnx.proto: ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto), without libonnx.
//
// Each Caffe layer becomes the ONNX operators that compute the same numbers (README,
// *ONNX export*, lists them). The model takes any batch size (its inputs' leading
// dimension is the symbol N) unless some shape in it depends on the batch in a way ONNX
// cannot follow; then its batch size is the one the net's Input or data layer declares.
// Caffe's pooling geometry is reproduced exactly: the windows that ceil rounding adds at
// the bottom/right become extra end padding, and average pooling divides as Caffe does
// (explicit zero padding, then an average over what lies inside it). A layer with no
// ONNX counterpart here is refused by name.
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
  std::vector<int> shape;  // as the net has it
  // Per dimension: empty for that number, "N" for the batch, "?" for a size that varies
  // with the batch; all empty when the model keeps a fixed batch size.
  std::vector<std::string> symbols;
};
struct OnnxModel {
  std::vector<OnnxTensor> inputs, outputs;
  std::string fixed_batch;  // why the model takes only the net's batch size; empty when it takes any
};

// "data [N, 1, 28, 28]".
std::string describe(const OnnxTensor& t);

// Writes `net` (a TEST-phase net, weights loaded) to `path`, atomically: its layers but
// the losses, Accuracy and Silence (with what reads their tops, and the label copies only
// they read); inputs are the tops of its Input and data layers that the model reads (the
// values the data layer hands the net, after transform_param); outputs are the values no
// kept layer reads (a deploy net's `prob`, a training net's logits), in net order. Throws Error naming
// the first layer that cannot be exported. To find which sizes follow the batch, the net is
// reshaped to another batch size for a moment and put back as it was, values included.
OnnxModel save_onnx(Net& net, const std::string& path, const std::string& producer_version);

// Whether the file at `path` holds an ONNX model (its top-level fields parse as a ModelProto's,
// with ir_version, a graph and an opset): what an export may replace.
bool is_onnx_model(const std::string& path);

// The layer types save_onnx translates.
const std::vector<std::string>& onnx_exportable_types();

}  // namespace crema::io
