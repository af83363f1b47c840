// ONNX export: a net built for inference, with its weights, written as an ONNX model
// (opset 17) that onnxruntime, TensorRT, OpenVINO and the other ONNX runtimes load.
// The model is encoded here with pb::Writer (onnx.proto: ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto), without libonnx.
//
// Each Caffe layer becomes the ONNX operators that compute the same numbers (README,
// *ONNX export*, lists them); shapes are the net's own, so the batch size is the one its
// Input layer declares. Caffe's pooling geometry is reproduced exactly: the windows that
// ceil rounding adds at the bottom/right become extra end padding, and average pooling
// divides as Caffe does (explicit zero padding, then an average over what lies inside
// it). A layer with no ONNX counterpart here is refused by name.
#pragma once

#include <string>
#include <vector>

namespace crema {
class Net;
}

namespace crema::io {

// Writes `net` (its layers, every output, parameters as initializers) to `path`,
// atomically. Throws Error naming the first layer that cannot be exported.
void save_onnx(const Net& net, const std::string& path, const std::string& producer_version);

// The layer types save_onnx translates.
const std::vector<std::string>& onnx_exportable_types();

}  // namespace crema::io
