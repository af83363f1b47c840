#include "io/onnx.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "engine/error.hpp"
#include "engine/net.hpp"
#include "io/files.hpp"
#include "io/protobuf_wire.hpp"
#include "layers/argmax_layer.hpp"
#include "layers/axis_broadcast.hpp"
#include "layers/base_conv_layer.hpp"
#include "layers/batch_norm_layer.hpp"
#include "layers/clip_layer.hpp"
#include "layers/concat_layer.hpp"
#include "layers/crop_layer.hpp"
#include "layers/dropout_layer.hpp"
#include "layers/eltwise_layer.hpp"
#include "layers/elu_layer.hpp"
#include "layers/embed_layer.hpp"
#include "layers/exp_layer.hpp"
#include "layers/inner_product_layer.hpp"
#include "layers/lrn_layer.hpp"
#include "layers/mvn_layer.hpp"
#include "layers/pooling_layer.hpp"
#include "layers/power_layer.hpp"
#include "layers/prelu_layer.hpp"
#include "layers/reduction_layer.hpp"
#include "layers/relu_layer.hpp"
#include "layers/scale_layer.hpp"
#include "layers/slice_layer.hpp"
#include "layers/softmax_layer.hpp"
#include "layers/swish_layer.hpp"
#include "layers/threshold_layer.hpp"
#include "layers/tile_layer.hpp"

namespace crema::io {

// Initializers are float and int64 in the host's byte order, which ONNX's raw_data
// (little-endian) must be.
static_assert(std::endian::native == std::endian::little, "the ONNX writer assumes a little-endian host");

namespace {

constexpr int64_t kIrVersion = 8;  // the IR that opset 17 belongs to
constexpr int64_t kOpset = 17;
constexpr int kFloat = 1, kInt64 = 7;  // TensorProto.DataType

// onnx.proto field numbers.
namespace f {
constexpr uint32_t kModelIrVersion = 1, kModelProducer = 2, kModelProducerVersion = 3, kModelGraph = 7,
                   kModelOpset = 8;
constexpr uint32_t kOpsetVersion = 2;
constexpr uint32_t kGraphNode = 1, kGraphName = 2, kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12;
constexpr uint32_t kNodeInput = 1, kNodeOutput = 2, kNodeName = 3, kNodeOpType = 4, kNodeAttribute = 5;
constexpr uint32_t kAttrName = 1, kAttrF = 2, kAttrI = 3, kAttrFloats = 7, kAttrInts = 8, kAttrType = 20;
constexpr uint32_t kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRaw = 9;
constexpr uint32_t kValueName = 1, kValueType = 2, kTypeTensor = 1, kTensorElemType = 1, kTensorShape = 2,
                   kShapeDim = 1, kDimValue = 1, kDimParam = 2;
}  // namespace f

// AttributeProto.AttributeType
enum class AttrType { Float = 1, Int = 2, Floats = 6, Ints = 7 };

struct Attr {
  std::string name;
  AttrType type;
  float f = 0.f;
  int64_t i = 0;
  std::vector<int64_t> ints;
};
Attr attr_f(std::string name, float v) { return {std::move(name), AttrType::Float, v, 0, {}}; }
Attr attr_i(std::string name, int64_t v) { return {std::move(name), AttrType::Int, 0.f, v, {}}; }
Attr attr_ints(std::string name, std::vector<int64_t> v) { return {std::move(name), AttrType::Ints, 0.f, 0, std::move(v)}; }

std::string encode_attr(const Attr& a) {
  pb::Writer w;
  w.bytes(f::kAttrName, a.name);
  if (a.type == AttrType::Float) w.fixed32_float(f::kAttrF, a.f);
  if (a.type == AttrType::Int) w.varint(f::kAttrI, static_cast<uint64_t>(a.i));
  for (int64_t v : a.ints) w.varint(f::kAttrInts, static_cast<uint64_t>(v));  // proto2: unpacked
  w.varint(f::kAttrType, static_cast<uint64_t>(a.type));
  return w.take();
}

// The symbolic name of the batch dimension in a model that takes any batch size.
constexpr const char* kBatchDim = "N";

// A graph input's or output's name and shape; per dimension, "" for the number in
// `shape`, kBatchDim for the batch, "?" for a size that varies with it otherwise (a
// dimension without value or name, which ONNX reads as unknown).
struct ValueInfo {
  std::string name;
  std::vector<int> shape;
  std::vector<std::string> symbols;
};

std::string encode_value_info(const ValueInfo& v) {
  pb::Writer dims;
  for (size_t a = 0; a < v.shape.size(); ++a) {
    pb::Writer dim;
    const std::string symbol = a < v.symbols.size() ? v.symbols[a] : std::string();
    if (symbol.empty())
      dim.varint(f::kDimValue, static_cast<uint64_t>(v.shape[a]));
    else if (symbol != "?")
      dim.bytes(f::kDimParam, symbol);
    dims.bytes(f::kShapeDim, dim.str());
  }
  const std::string& name = v.name;
  pb::Writer tensor;
  tensor.varint(f::kTensorElemType, kFloat);
  tensor.bytes(f::kTensorShape, dims.str());
  pb::Writer type;
  type.bytes(f::kTypeTensor, tensor.str());
  pb::Writer value;
  value.bytes(f::kValueName, name);
  value.bytes(f::kValueType, type.str());
  return value.take();
}

std::vector<int64_t> dims64(const std::vector<int>& shape) { return {shape.begin(), shape.end()}; }

// The ONNX graph under construction. ONNX names each tensor once, while Caffe's in-place
// layers write a blob several times: a graph input keeps the blob's name for its first
// value, a graph output for its last (unless it is an input too), any other blob for its
// first; the other values get "<blob>__<k>". Every name is claimed once: a blob named
// like one crema makes up ("<layer>/<what>", "<blob>__<k>") is refused.
class Graph {
 public:
  Graph(const Net& net, const std::set<std::string>& inputs, const std::set<std::string>& outputs)
      : inputs_named_(inputs), outputs_named_(outputs) {
    for (int i = 0; i < net.num_layers(); ++i)
      for (const auto& top : net.layer(i).spec().top) ++writes_left_[top];
  }

  const std::string& read(const std::string& blob) const {
    auto it = current_.find(blob);
    if (it == current_.end()) throw Error("cannot export to ONNX: blob '" + blob + "' is read but not part of the model");
    return it->second;
  }
  std::string write(const std::string& blob) {
    const int left = --writes_left_[blob];
    const int k = versions_[blob]++;
    const bool last_plain = outputs_named_.count(blob) && !inputs_named_.count(blob);
    const bool plain = last_plain ? left == 0 : k == 0;
    const std::string name = plain ? blob : blob + "__" + std::to_string(last_plain ? k + 1 : k);
    current_[blob] = name;
    return name;
  }
  void claim(const std::string& name) {
    if (!names_.insert(name).second)
      throw Error("cannot export to ONNX: the tensor name '" + name + "' would be used twice (crema names its own " +
                  "tensors '<layer>/<what>' and '<blob>__<k>'); rename the blob or layer that is called so");
  }

  // An initializer; `data` holds the product of `dims` floats.
  std::string constant(const std::string& name, const std::vector<int64_t>& dims, const float* data) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return initializer(name, dims, kFloat, std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * 4));
  }
  std::string constant_i64(const std::string& name, const std::vector<int64_t>& values) {
    return initializer(name, {static_cast<int64_t>(values.size())}, kInt64,
                       std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * 8));
  }
  // The shape input of a Reshape: an entry that scales with the batch size may become -1
  // (inferred) in a model that takes any batch size (generalise_batch).
  std::string reshape_shape(const std::string& name, const std::vector<int64_t>& values) {
    reshape_shapes_.insert(name);
    return constant_i64(name, values);
  }

  void node(const std::string& name, const std::string& op, const std::vector<std::string>& in,
            const std::vector<std::string>& out, const std::vector<Attr>& attrs = {}) {
    for (const auto& o : out) claim(o);
    pb::Writer n;
    for (const auto& i : in) n.bytes(f::kNodeInput, i);
    for (const auto& o : out) n.bytes(f::kNodeOutput, o);
    n.bytes(f::kNodeName, name);
    n.bytes(f::kNodeOpType, op);
    for (const Attr& a : attrs) n.bytes(f::kNodeAttribute, encode_attr(a));
    nodes_.push_back(n.take());
    node_names_.push_back(name);
  }

  void input(const std::string& name, const std::vector<int>& shape) {
    claim(name);
    inputs_.push_back({name, shape, {}});
  }
  void output(const std::string& name, const std::vector<int>& shape) { outputs_.push_back({name, shape, {}}); }

  // The per-dimension symbols (ValueInfo) of an input or output tensor.
  std::vector<std::string> input_symbols(const std::string& tensor) const { return symbols_of(inputs_, tensor); }
  std::vector<std::string> output_symbols(const std::string& tensor) const { return symbols_of(outputs_, tensor); }

  // Makes this graph, built at batch size `batch`, take any batch size, given `other`,
  // the same net's graph at batch size `other_batch`: the two may differ only in the
  // inputs' leading dimension (which becomes kBatchDim), the outputs' dimensions (the
  // batch, or unknown) and one entry of a Reshape shape that scales with the batch
  // (which becomes -1). Anything else depends on the batch size in a way the model
  // cannot follow: returns why, changing nothing.
  std::optional<std::string> generalise_batch(const Graph& other, int batch, int other_batch) {
    const std::string fixed = "the model takes batches of exactly " + std::to_string(batch) + ": ";
    if (nodes_.size() != other.nodes_.size() || initializers_.size() != other.initializers_.size())
      return fixed + "its operators depend on the batch size";
    for (size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i] != other.nodes_[i])
        return fixed + "the attributes of operator '" + node_names_[i] + "' depend on it";
    std::vector<std::pair<size_t, size_t>> batch_entries;  // (initializer, entry) to become -1
    for (size_t i = 0; i < initializers_.size(); ++i) {
      const Initializer& a = initializers_[i];
      const Initializer& b = other.initializers_[i];
      if (a.raw == b.raw) continue;
      const std::string why = fixed + "the constant '" + a.name + "' depends on it";
      if (a.type != kInt64 || a.raw.size() != b.raw.size() || !reshape_shapes_.count(a.name)) return why;
      std::vector<int64_t> va(a.raw.size() / 8), vb(va.size());
      std::memcpy(va.data(), a.raw.data(), a.raw.size());
      std::memcpy(vb.data(), b.raw.data(), b.raw.size());
      std::optional<size_t> entry;
      for (size_t k = 0; k < va.size(); ++k) {
        if (va[k] == vb[k]) continue;
        // Reshape infers one -1 entry from the element count: that entry must be the only
        // one that changes, in proportion to the batch.
        if (entry || va[k] % batch != 0 || vb[k] % other_batch != 0 || va[k] / batch != vb[k] / other_batch) return why;
        entry = k;
      }
      batch_entries.emplace_back(i, *entry);
    }
    std::vector<ValueInfo> inputs = inputs_, outputs = outputs_;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<int>&a = inputs[i].shape, &b = other.inputs_[i].shape;
      if (a.empty() || a[0] != batch || b[0] != other_batch || !std::equal(a.begin() + 1, a.end(), b.begin() + 1))
        return fixed + "input '" + inputs[i].name + "' has no batch axis";
      inputs[i].symbols.assign(a.size(), "");
      inputs[i].symbols[0] = kBatchDim;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::vector<int>&a = outputs[i].shape, &b = other.outputs_[i].shape;
      if (a.size() != b.size()) return fixed + "the rank of output '" + outputs[i].name + "' depends on it";
      outputs[i].symbols.assign(a.size(), "");
      for (size_t d = 0; d < a.size(); ++d)
        if (a[d] != b[d]) outputs[i].symbols[d] = d == 0 && a[d] == batch && b[d] == other_batch ? kBatchDim : "?";
    }
    for (const auto& [i, k] : batch_entries) {
      const int64_t inferred = -1;
      std::memcpy(initializers_[i].raw.data() + k * 8, &inferred, 8);
    }
    inputs_ = std::move(inputs);
    outputs_ = std::move(outputs);
    return std::nullopt;
  }

  std::string model(const std::string& graph_name, const std::string& producer_version) const {
    pb::Writer g;
    for (const auto& n : nodes_) g.bytes(f::kGraphNode, n);
    g.bytes(f::kGraphName, graph_name);
    for (const auto& t : initializers_) {
      pb::Writer w;
      for (int64_t d : t.dims) w.varint(f::kTensorDims, static_cast<uint64_t>(d));
      w.varint(f::kTensorDataType, static_cast<uint64_t>(t.type));
      w.bytes(f::kTensorName, t.name);
      w.bytes(f::kTensorRaw, t.raw);
      g.bytes(f::kGraphInitializer, w.str());
    }
    for (const auto& v : inputs_) g.bytes(f::kGraphInput, encode_value_info(v));
    for (const auto& v : outputs_) g.bytes(f::kGraphOutput, encode_value_info(v));
    pb::Writer opset;
    opset.varint(f::kOpsetVersion, kOpset);  // the default domain
    pb::Writer m;
    m.varint(f::kModelIrVersion, kIrVersion);
    m.bytes(f::kModelProducer, "crema");
    m.bytes(f::kModelProducerVersion, producer_version);
    m.bytes(f::kModelGraph, g.str());
    m.bytes(f::kModelOpset, opset.str());
    return m.take();
  }

 private:
  std::string initializer(const std::string& name, const std::vector<int64_t>& dims, int type, std::string_view raw) {
    claim(name);
    initializers_.push_back({name, dims, type, std::string(raw)});
    return name;
  }

  static std::vector<std::string> symbols_of(const std::vector<ValueInfo>& values, const std::string& tensor) {
    for (const auto& v : values)
      if (v.name == tensor) return v.symbols;
    return {};
  }

  struct Initializer {
    std::string name;
    std::vector<int64_t> dims;
    int type;
    std::string raw;
  };

  std::map<std::string, int> writes_left_, versions_;
  std::set<std::string> inputs_named_, outputs_named_, names_, reshape_shapes_;
  std::map<std::string, std::string> current_;
  std::vector<std::string> nodes_, node_names_;  // encoded NodeProtos and their names
  std::vector<Initializer> initializers_;
  std::vector<ValueInfo> inputs_, outputs_;
};

// One layer being translated: its spec, blobs, and tensor names.
struct LayerExport {
  LayerExport(const Layer& l, const BlobVec& b, const BlobVec& t, Graph& graph)
      : layer(l), spec(l.spec()), bottom(b), top(t), g(graph) {
    for (const auto& name : spec.bottom) in.push_back(g.read(name));
  }
  const Layer& layer;
  const LayerSpec& spec;
  const BlobVec& bottom;  // for shapes
  const BlobVec& top;
  Graph& g;
  std::vector<std::string> in;  // the bottoms' tensors, read before any top is written

  std::string out(size_t i) { return g.write(spec.top[i]); }
  // A tensor name private to this layer.
  std::string temp(const std::string& what) const { return spec.name + "/" + what; }
  // Parameter blob j as an initializer, in `dims` (its own shape when empty).
  std::string param(size_t j, std::vector<int64_t> dims = {}) const {
    const Blob& b = *layer.blobs()[j];
    if (dims.empty()) dims = dims64(b.shape());
    return g.constant(spec.name + "/" + std::to_string(j), dims, b.cpu_data());
  }
  std::string scalar(const std::string& what, float v) const { return g.constant(temp(what), {}, &v); }
  void node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
            const std::vector<Attr>& attrs = {}) {
    g.node(spec.name + (op_count_++ ? "/" + std::to_string(op_count_) : std::string()), op, inputs, outputs, attrs);
  }
  [[noreturn]] void refuse(const std::string& why) const {
    throw Error("layer '" + spec.name + "' (" + spec.type + ") cannot be exported to ONNX: " + why);
  }
  int rank() const { return bottom[0]->num_axes(); }
  int axis(int a) const { return a < 0 ? a + rank() : a; }

 private:
  int op_count_ = 0;
};

// The shape an operand of `operand_axes` axes starting at `axis` must have to broadcast
// against a bottom of rank `rank` (ONNX aligns shapes at the right): trailing 1s.
std::vector<int64_t> broadcast_dims(const std::vector<int>& operand, int axis, int rank) {
  std::vector<int64_t> dims = dims64(operand);
  for (int a = axis + static_cast<int>(operand.size()); a < rank; ++a) dims.push_back(1);
  return dims;
}

// The bottom as a matrix (count(0, axis), count(axis)): Gemm's and the reductions' view.
std::string flatten_at(LayerExport& e, int axis) {
  const Blob& x = *e.bottom[0];
  const std::string flat = e.temp("flat");
  e.node("Reshape", {e.in[0], e.g.reshape_shape(e.temp("flat_shape"), {x.count(0, axis), x.count(axis)})}, {flat});
  return flat;
}

// `value` reshaped to the layer's top 0.
void reshape_to_top(LayerExport& e, const std::string& value) {
  e.node("Reshape", {value, e.g.reshape_shape(e.temp("top_shape"), dims64(e.top[0]->shape()))}, {e.out(0)});
}

// Scale and Bias: y = x ∘ operand over axes [axis, axis + num_axes), the operand a
// parameter blob or bottom 1.
void broadcast_op(LayerExport& e, const std::string& op, const AxisOperandParams& p, bool with_bias) {
  const int axis = e.axis(p.axis);
  std::string operand;
  if (e.bottom.size() > 1) {
    const std::vector<int64_t> dims = broadcast_dims(e.bottom[1]->shape(), axis, e.rank());
    operand = e.temp("operand");
    e.node("Reshape", {e.in[1], e.g.reshape_shape(e.temp("operand_shape"), dims)}, {operand});
  } else {
    operand = e.param(0, broadcast_dims(e.layer.blobs()[0]->shape(), axis, e.rank()));
  }
  if (!with_bias) return e.node(op, {e.in[0], operand}, {e.out(0)});
  const std::string scaled = e.temp("scaled");
  e.node(op, {e.in[0], operand}, {scaled});
  const size_t bias_blob = e.bottom.size() > 1 ? 0 : 1;
  const std::string bias = e.param(bias_blob, broadcast_dims(e.layer.blobs()[bias_blob]->shape(), axis, e.rank()));
  e.node("Add", {scaled, bias}, {e.out(0)});
}

// Caffe's pooling as ONNX pads for `out` windows along one axis: begin = pad, end = pad
// plus whatever those windows need beyond the padded image, which is where ceil rounding
// adds a partial window.
int64_t pool_end_pad(int in, int out, int kernel, int stride, int pad) {
  return pad + std::max(0, (out - 1) * stride + kernel - (in + 2 * pad));
}

void export_pooling(LayerExport& e) {
  const PoolingParams p = PoolingParams::parse(e.spec.params("pooling_param"));
  if (e.top.size() > 1) e.refuse("the second top (the max positions) has no ONNX counterpart; remove it");
  const bool max = p.pool == PoolingParams::Method::MAX;
  if (p.global_pooling) return e.node(max ? "GlobalMaxPool" : "GlobalAveragePool", {e.in[0]}, {e.out(0)});
  const int in_h = e.bottom[0]->shape(2), in_w = e.bottom[0]->shape(3);
  const int out_h = e.top[0]->shape(2), out_w = e.top[0]->shape(3);
  // A window that starts past the image is empty and crema writes 0 there; ONNX cannot
  // pool one (its pads must be smaller than the kernel), so the others are pooled and
  // the output padded with zeros.
  const int valid_h = std::min(out_h, (in_h + p.pad_h - 1) / p.stride_h + 1);
  const int valid_w = std::min(out_w, (in_w + p.pad_w - 1) / p.stride_w + 1);
  const bool empty_windows = valid_h < out_h || valid_w < out_w;
  const std::string out = e.out(0);
  const std::string pooled = empty_windows ? e.temp("pooled") : out;
  const int64_t end_h = pool_end_pad(in_h, valid_h, p.kernel_h, p.stride_h, p.pad_h);
  const int64_t end_w = pool_end_pad(in_w, valid_w, p.kernel_w, p.stride_w, p.pad_w);
  std::vector<Attr> attrs = {attr_ints("kernel_shape", {p.kernel_h, p.kernel_w}),
                             attr_ints("strides", {p.stride_h, p.stride_w})};
  if (max) {
    attrs.push_back(attr_ints("pads", {p.pad_h, p.pad_w, end_h, end_w}));
    e.node("MaxPool", {e.in[0]}, {pooled}, attrs);
  } else {
    // Caffe divides by the window clipped to the padded image, zeros of the padding
    // included, but not by the part that hangs over it: pad with zeros explicitly, then
    // average without counting the overhang.
    std::string source = e.in[0];
    if (p.pad_h > 0 || p.pad_w > 0) {
      source = e.temp("padded");
      e.node("Pad", {e.in[0], e.g.constant_i64(e.temp("pads"), {0, 0, p.pad_h, p.pad_w, 0, 0, p.pad_h, p.pad_w})},
             {source});
    }
    attrs.push_back(attr_ints("pads", {0, 0, end_h - p.pad_h, end_w - p.pad_w}));
    attrs.push_back(attr_i("count_include_pad", 0));
    e.node("AveragePool", {source}, {pooled}, attrs);
  }
  if (empty_windows)
    e.node("Pad", {pooled, e.g.constant_i64(e.temp("empty_windows"), {0, 0, 0, 0, 0, 0, out_h - valid_h, out_w - valid_w})},
           {out});
}

void export_convolution(LayerExport& e, bool deconvolution) {
  const ConvolutionParams p = ConvolutionParams::parse(e.spec.params("convolution_param"));
  const ConvGeometry geo = p.spatial_geometry(e.spec);
  if (e.bottom.size() > 1) e.refuse("several bottoms sharing one convolution; export one per bottom");
  std::vector<std::string> inputs = {e.in[0], e.param(0)};
  if (p.bias_term) inputs.push_back(e.param(1));
  // A kernel that overhangs the padded image by less than a stride still gives one
  // output in Caffe (reading zeros there); ONNX needs those zeros as end padding.
  int64_t end_h = geo.pad_h, end_w = geo.pad_w;
  if (!deconvolution) {
    end_h += std::max(0, geo.extent_h() - (e.bottom[0]->shape(2) + 2 * geo.pad_h));
    end_w += std::max(0, geo.extent_w() - (e.bottom[0]->shape(3) + 2 * geo.pad_w));
  }
  e.node(deconvolution ? "ConvTranspose" : "Conv", inputs, {e.out(0)},
         {attr_ints("kernel_shape", {geo.kernel_h, geo.kernel_w}), attr_ints("strides", {geo.stride_h, geo.stride_w}),
          attr_ints("pads", {geo.pad_h, geo.pad_w, end_h, end_w}),
          attr_ints("dilations", {geo.dilation_h, geo.dilation_w}), attr_i("group", p.group)});
}

void export_inner_product(LayerExport& e) {
  const InnerProductParams p = InnerProductParams::parse(e.spec.params("inner_product_param"));
  // Gemm multiplies matrices: the bottom as (outer, inner), then back to the top's shape.
  std::vector<std::string> inputs = {flatten_at(e, e.axis(p.axis)), e.param(0)};
  if (p.bias_term) inputs.push_back(e.param(1));
  const bool top_is_2d = e.top[0]->num_axes() == 2;
  const std::string product = top_is_2d ? e.out(0) : e.temp("product");
  e.node("Gemm", inputs, {product}, {attr_i("transB", p.transpose ? 0 : 1)});
  if (!top_is_2d) reshape_to_top(e, product);
}

void export_batch_norm(LayerExport& e) {
  const BatchNormParams p = BatchNormParams::parse(e.spec.params("batch_norm_param"));
  if (p.use_global_stats == false)
    e.refuse("use_global_stats: false normalises with each batch's own statistics; export with the running "
             "statistics (remove use_global_stats, the TEST default)");
  // Caffe stores the running sums and their scale factor: mean = blob0 / s, var = blob1 / s.
  const auto& blobs = e.layer.blobs();
  const float s = blobs[2]->cpu_data()[0];
  const float factor = s == 0.f ? 0.f : 1.f / s;
  const int channels = blobs[0]->count();
  std::vector<float> mean(static_cast<size_t>(channels)), var(mean.size()), ones(mean.size(), 1.f), zeros(mean.size(), 0.f);
  for (int c = 0; c < channels; ++c) {
    mean[static_cast<size_t>(c)] = blobs[0]->cpu_data()[c] * factor;
    var[static_cast<size_t>(c)] = blobs[1]->cpu_data()[c] * factor;
  }
  const std::vector<int64_t> dims = {channels};
  e.node("BatchNormalization",
         {e.in[0], e.g.constant(e.temp("scale"), dims, ones.data()), e.g.constant(e.temp("bias"), dims, zeros.data()),
          e.g.constant(e.temp("mean"), dims, mean.data()), e.g.constant(e.temp("var"), dims, var.data())},
         {e.out(0)}, {attr_f("epsilon", p.eps)});
}

void export_eltwise(LayerExport& e) {
  const EltwiseParams p = EltwiseParams::parse(e.spec.params("eltwise_param"));
  if (p.operation == EltwiseOp::PROD) {
    std::string acc = e.in[0];
    for (size_t i = 1; i < e.in.size(); ++i) {
      const std::string next = i + 1 == e.in.size() ? e.out(0) : e.temp("product" + std::to_string(i));
      e.node("Mul", {acc, e.in[i]}, {next});
      acc = next;
    }
    return;
  }
  if (p.operation == EltwiseOp::MAX) return e.node("Max", e.in, {e.out(0)});
  std::vector<std::string> terms = e.in;
  for (size_t i = 0; i < p.coeff.size(); ++i) {
    if (p.coeff[i] == 1.f) continue;
    terms[i] = e.temp("term" + std::to_string(i));
    e.node("Mul", {e.in[i], e.scalar("coeff" + std::to_string(i), p.coeff[i])}, {terms[i]});
  }
  e.node("Sum", terms, {e.out(0)});
}

void export_slice(LayerExport& e) {
  const SliceParams p = SliceParams::parse(e.spec.params("slice_param"));
  const int axis = e.axis(p.slice_dim ? *p.slice_dim : p.axis);
  std::vector<int64_t> sizes;
  std::vector<std::string> outs;
  for (size_t i = 0; i < e.top.size(); ++i) {
    sizes.push_back(e.top[i]->shape(axis));
    outs.push_back(e.out(i));
  }
  e.node("Split", {e.in[0], e.g.constant_i64(e.temp("sizes"), sizes)}, outs, {attr_i("axis", axis)});
}

// u = shift + scale·x (each step only where it changes something), the inner part of
// Exp, Log, Power and Swish.
std::string scaled_shifted(LayerExport& e, float scale, float shift) {
  std::string u = e.in[0];
  if (scale != 1.f) {
    const std::string scaled = e.temp("scaled");
    e.node("Mul", {u, e.scalar("scale", scale)}, {scaled});
    u = scaled;
  }
  if (shift != 0.f) {
    const std::string shifted = e.temp("shifted");
    e.node("Add", {u, e.scalar("shift", shift)}, {shifted});
    u = shifted;
  }
  return u;
}

// Exp: y = outer·e^(inner·x) with inner = scale·ln(base) and outer = base^shift, as
// crema computes it (folding the shift into the exponent would overflow elsewhere).
void export_exp(LayerExport& e) {
  const BaseScaleShiftParams p = BaseScaleShiftParams::parse(e.spec.params("exp_param"));
  const bool natural = p.base == -1.f;
  const float inner = (natural ? 1.f : std::log(p.base)) * p.scale;
  const float outer = p.shift == 0.f ? 1.f : natural ? std::exp(p.shift) : std::pow(p.base, p.shift);
  const std::string u = scaled_shifted(e, inner, 0.f);
  if (outer == 1.f) return e.node("Exp", {u}, {e.out(0)});
  const std::string exp = e.temp("exp");
  e.node("Exp", {u}, {exp});
  e.node("Mul", {exp, e.scalar("outer", outer)}, {e.out(0)});
}

// Log: y = ln(shift + scale·x) / ln(base).
void export_log(LayerExport& e) {
  const BaseScaleShiftParams p = BaseScaleShiftParams::parse(e.spec.params("log_param"));
  const std::string u = scaled_shifted(e, p.scale, p.shift);
  if (p.base == -1.f) return e.node("Log", {u}, {e.out(0)});
  const std::string ln = e.temp("ln");
  e.node("Log", {u}, {ln});
  e.node("Mul", {ln, e.scalar("base_scale", 1.f / std::log(p.base))}, {e.out(0)});
}

// Power: y = (shift + scale·x)^power; a constant when power·scale = 0, even where x is
// inf or NaN, as crema.
void export_power(LayerExport& e) {
  const PowerParams p = PowerParams::parse(e.spec.params("power_param"));
  if (p.power * p.scale == 0.f) {
    const float value = p.power == 0.f ? 1.f : std::pow(p.shift, p.power);
    // The bottom's own shape, so that the constant follows the batch size.
    const std::string shape = e.temp("shape");
    e.node("Shape", {e.in[0]}, {shape});
    return e.node("Expand", {e.scalar("value", value), shape}, {e.out(0)});
  }
  const std::string u = scaled_shifted(e, p.scale, p.shift);
  if (p.power == 1.f) return e.node("Identity", {u}, {e.out(0)});
  e.node("Pow", {u, e.scalar("power", p.power)}, {e.out(0)});
}

// Crop: bottom 0 cut to the top's shape on the axes from crop_param.axis on, starting at
// the layer's own offsets.
void export_crop(LayerExport& e) {
  const int axis = e.axis(CropParams::parse(e.spec.params("crop_param")).axis);
  const std::vector<int>& offsets = static_cast<const CropLayer&>(e.layer).offsets();
  std::vector<int64_t> starts, ends, axes;
  for (int a = axis; a < e.rank(); ++a) {
    const int offset = offsets[static_cast<size_t>(a)];
    starts.push_back(offset);
    ends.push_back(offset + e.top[0]->shape(a));
    axes.push_back(a);
  }
  e.node("Slice",
         {e.in[0], e.g.constant_i64(e.temp("starts"), starts), e.g.constant_i64(e.temp("ends"), ends),
          e.g.constant_i64(e.temp("axes"), axes)},
         {e.out(0)});
}

// Reduction: every axis from reduction_param.axis on reduced to one value, times coeff.
void export_reduction(LayerExport& e) {
  const ReductionParams p = ReductionParams::parse(e.spec.params("reduction_param"));
  const std::string flat = flatten_at(e, e.axis(p.axis));
  const char* op = p.operation == ReductionOp::SUM     ? "ReduceSum"
                   : p.operation == ReductionOp::ASUM  ? "ReduceL1"
                   : p.operation == ReductionOp::SUMSQ ? "ReduceSumSquare"
                                                       : "ReduceMean";
  const std::string reduced = e.temp("reduced");
  if (p.operation == ReductionOp::SUM)  // opset 13 on: ReduceSum takes its axes as an input
    e.node(op, {flat, e.g.constant_i64(e.temp("reduce_axes"), {1})}, {reduced}, {attr_i("keepdims", 0)});
  else
    e.node(op, {flat}, {reduced}, {attr_ints("axes", {1}), attr_i("keepdims", 0)});
  std::string value = reduced;
  if (p.coeff != 1.f) {
    value = e.temp("scaled");
    e.node("Mul", {reduced, e.scalar("coeff", p.coeff)}, {value});
  }
  reshape_to_top(e, value);
}

// MVN: each group (an image's channel, or with across_channels the whole image) shifted
// to mean 0 and, with normalize_variance, divided by its standard deviation plus eps.
void export_mvn(LayerExport& e) {
  const MVNParams p = MVNParams::parse(e.spec.params("mvn_param"));
  const std::string groups = flatten_at(e, p.across_channels ? 1 : 2);
  auto mean = [&](const std::string& in, const std::string& what) {
    const std::string out = e.temp(what);
    e.node("ReduceMean", {in}, {out}, {attr_ints("axes", {1}), attr_i("keepdims", 1)});
    return out;
  };
  const std::string centred = e.temp("centred");
  e.node("Sub", {groups, mean(groups, "mean")}, {centred});
  if (!p.normalize_variance) return reshape_to_top(e, centred);
  const std::string squares = e.temp("squares"), deviation = e.temp("deviation"), divisor = e.temp("divisor"),
                    normalised = e.temp("normalised");
  e.node("Mul", {centred, centred}, {squares});
  e.node("Sqrt", {mean(squares, "variance")}, {deviation});
  e.node("Add", {deviation, e.scalar("eps", p.eps)}, {divisor});
  e.node("Div", {centred, divisor}, {normalised});
  reshape_to_top(e, normalised);
}

// ArgMax with top_k 1: the index of the largest value (ties to the larger index, as
// Caffe) along `axis`, or per sample over everything after axis 0 into (N, 1, 1); with
// an axis, out_max_val gives the largest value instead.
void export_argmax(LayerExport& e) {
  const ArgMaxParams p = ArgMaxParams::parse(e.spec.params("argmax_param"));
  if (p.top_k != 1 || (p.out_max_val && !p.axis))
    e.refuse("only top_k 1 is exported, and out_max_val only with an axis");
  const int axis = p.axis ? e.axis(*p.axis) : 1;
  if (p.out_max_val)
    return e.node("ReduceMax", {e.in[0]}, {e.out(0)}, {attr_ints("axes", {axis}), attr_i("keepdims", 1)});
  std::string source = e.in[0];
  if (!p.axis) source = flatten_at(e, 1);
  const std::string index = e.temp("index"), as_float = p.axis ? e.out(0) : e.temp("as_float");
  e.node("ArgMax", {source}, {index}, {attr_i("axis", axis), attr_i("keepdims", 1), attr_i("select_last_index", 1)});
  e.node("Cast", {index}, {as_float}, {attr_i("to", kFloat)});  // Caffe's indices are floats
  if (!p.axis) reshape_to_top(e, as_float);
}

// Embed: row x of the weight (input_dim, num_output) for every value x, plus the bias.
void export_embed(LayerExport& e) {
  const EmbedParams p = EmbedParams::parse(e.spec.params("embed_param"));
  const std::string index = e.temp("index");
  e.node("Cast", {e.in[0]}, {index}, {attr_i("to", kInt64)});
  if (!p.bias_term) return e.node("Gather", {e.param(0), index}, {e.out(0)}, {attr_i("axis", 0)});
  const std::string rows = e.temp("rows");
  e.node("Gather", {e.param(0), index}, {rows}, {attr_i("axis", 0)});
  e.node("Add", {rows, e.param(1)}, {e.out(0)});
}

void export_static_reshape(LayerExport& e) { reshape_to_top(e, e.in[0]); }

using Exporter = std::function<void(LayerExport&)>;

const std::map<std::string, Exporter>& exporters() {
  auto unary = [](const char* op) { return [op](LayerExport& e) { e.node(op, {e.in[0]}, {e.out(0)}); }; };
  static const std::map<std::string, Exporter> table = {
      {"Convolution", [](LayerExport& e) { export_convolution(e, false); }},
      {"Deconvolution", [](LayerExport& e) { export_convolution(e, true); }},
      {"InnerProduct", export_inner_product},
      {"Pooling", export_pooling},
      {"LRN",
       [](LayerExport& e) {
         const LRNParams p = LRNParams::parse(e.spec.params("lrn_param"));
         if (p.norm_region != LRNParams::NormRegion::ACROSS_CHANNELS)
           e.refuse("norm_region WITHIN_CHANNEL has no ONNX operator (ONNX's LRN is across channels)");
         e.node("LRN", {e.in[0]}, {e.out(0)},
                {attr_f("alpha", p.alpha), attr_f("beta", p.beta), attr_f("bias", p.k), attr_i("size", p.local_size)});
       }},
      {"BatchNorm", export_batch_norm},
      {"Scale",
       [](LayerExport& e) {
         const ScaleParams p = ScaleParams::parse(e.spec.params("scale_param"));
         broadcast_op(e, "Mul", p.operand, p.bias_term);
       }},
      {"Bias",
       [](LayerExport& e) {
         MapReader r = e.spec.params("bias_param");
         broadcast_op(e, "Add", AxisOperandParams::parse(r, "filler", 0.f), false);
       }},
      {"ReLU",
       [](LayerExport& e) {
         const ReLUParams p = ReLUParams::parse(e.spec.params("relu_param"));
         if (p.negative_slope == 0.f) return e.node("Relu", {e.in[0]}, {e.out(0)});
         e.node("LeakyRelu", {e.in[0]}, {e.out(0)}, {attr_f("alpha", p.negative_slope)});
       }},
      {"PReLU",
       [](LayerExport& e) {
         const PReLUParams p = PReLUParams::parse(e.spec.params("prelu_param"));
         const std::string slope =
             p.channel_shared ? e.param(0, {1}) : e.param(0, broadcast_dims(e.layer.blobs()[0]->shape(), 1, e.rank()));
         e.node("PRelu", {e.in[0], slope}, {e.out(0)});
       }},
      {"ELU",
       [](LayerExport& e) {
         e.node("Elu", {e.in[0]}, {e.out(0)}, {attr_f("alpha", ELUParams::parse(e.spec.params("elu_param")).alpha)});
       }},
      {"Sigmoid", unary("Sigmoid")},
      {"TanH", unary("Tanh")},
      {"AbsVal", unary("Abs")},
      {"BNLL", unary("Softplus")},  // log(1 + e^x)
      {"Dropout",
       [](LayerExport& e) {
         // Inference: the identity when training scaled the kept values (the default), else
         // the expected value, x·(1 − p), as Caffe's TEST phase.
         const DropoutParams p = DropoutParams::parse(e.spec.params("dropout_param"));
         if (p.scale_train) return e.node("Identity", {e.in[0]}, {e.out(0)});
         e.node("Mul", {e.in[0], e.scalar("keep", 1.f - p.dropout_ratio)}, {e.out(0)});
       }},
      {"Swish",
       [](LayerExport& e) {
         const std::string z = scaled_shifted(e, SwishParams::parse(e.spec.params("swish_param")).beta, 0.f);
         const std::string gate = e.temp("gate");
         e.node("Sigmoid", {z}, {gate});
         e.node("Mul", {e.in[0], gate}, {e.out(0)});
       }},
      {"Clip",
       [](LayerExport& e) {
         const ClipParams p = ClipParams::parse(e.spec.params("clip_param"));
         e.node("Clip", {e.in[0], e.scalar("min", p.min), e.scalar("max", p.max)}, {e.out(0)});
       }},
      {"Exp", export_exp},
      {"Log", export_log},
      {"Power", export_power},
      {"Softmax",
       [](LayerExport& e) {
         const int axis = e.axis(SoftmaxParams::parse(e.spec.params("softmax_param")).axis);
         e.node("Softmax", {e.in[0]}, {e.out(0)}, {attr_i("axis", axis)});
       }},
      {"Eltwise", export_eltwise},
      {"Concat",
       [](LayerExport& e) {
         const ConcatParams p = ConcatParams::parse(e.spec.params("concat_param"));
         e.node("Concat", e.in, {e.out(0)}, {attr_i("axis", e.axis(p.concat_dim ? *p.concat_dim : p.axis))});
       }},
      {"Slice", export_slice},
      {"Split",  // Caffe's copies of a blob read by several layers: the same tensor in ONNX
       [](LayerExport& e) {
         for (size_t i = 0; i < e.top.size(); ++i) e.node("Identity", {e.in[0]}, {e.out(i)});
       }},
      // Shapes are the net's own, so Flatten and Reshape are one static Reshape.
      {"Flatten", export_static_reshape},
      {"Reshape", export_static_reshape},
      {"Crop", export_crop},
      {"Reduction", export_reduction},
      {"MVN", export_mvn},
      {"ArgMax", export_argmax},
      {"Embed", export_embed},
      {"Tile",  // Caffe repeats the whole block from the axis on: ONNX's Tile on that axis
       [](LayerExport& e) {
         const TileParams p = TileParams::parse(e.spec.params("tile_param"));
         std::vector<int64_t> repeats(static_cast<size_t>(e.rank()), 1);
         repeats[static_cast<size_t>(e.axis(p.axis))] = p.tiles;
         e.node("Tile", {e.in[0], e.g.constant_i64(e.temp("repeats"), repeats)}, {e.out(0)});
       }},
      {"Threshold",  // 1 where x > threshold, else 0
       [](LayerExport& e) {
         const std::string above = e.temp("above");
         e.node("Greater", {e.in[0], e.scalar("threshold", ThresholdParams::parse(e.spec.params("threshold_param")).threshold)},
                {above});
         e.node("Cast", {above}, {e.out(0)}, {attr_i("to", kFloat)});
       }},
      {"Parameter",  // its learnt blob, as a constant
       [](LayerExport& e) { e.node("Identity", {e.param(0)}, {e.out(0)}); }},
  };
  return table;
}

}  // namespace

bool is_onnx_model(const std::string& path) {
  // A solver state or a legacy mean BlobProto also opens with a varint field 1; neither has
  // both a message field 7 (ModelProto's graph) and 8 (its opset_import). The top-level tags
  // are read from the stream, and the payloads (the graph holds every weight) sought past, so
  // an earlier export of any size is told without holding it.
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0);
  auto varint = [&in](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const int c = in.get();
      if (c == EOF) return false;
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return true;
    }
    return false;  // longer than 10 bytes: no protobuf
  };
  bool ir_version = false, graph = false, opset = false;
  uint64_t tag = 0, value = 0;
  while (in.tellg() < size) {
    if (!varint(tag)) return false;
    const uint64_t field = tag >> 3;
    switch (static_cast<pb::WireType>(tag & 7)) {
      case pb::WireType::Varint:
        if (!varint(value)) return false;
        ir_version |= field == 1;
        break;
      case pb::WireType::Bytes:
        if (!varint(value) || value > static_cast<uint64_t>(size - in.tellg())) return false;
        in.seekg(static_cast<std::streamoff>(value), std::ios::cur);
        graph |= field == 7;
        opset |= field == 8;
        break;
      case pb::WireType::Fixed64:
        in.seekg(8, std::ios::cur);
        break;
      case pb::WireType::Fixed32:
        in.seekg(4, std::ios::cur);
        break;
      default:
        return false;  // groups are no part of ModelProto
    }
    if (!in || in.tellg() > size) return false;
  }
  return ir_version && graph && opset;
}

const std::vector<std::string>& onnx_exportable_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t = {"Input"};  // and data layers, whose tops become inputs
    for (const auto& [type, exporter] : exporters()) t.push_back(type);
    return t;
  }();
  return types;
}

namespace {

// What the model holds of a net: the layers that compute predictions. Losses, Accuracy
// and Silence score or discard them and are left out, with every layer that reads what
// they make and Caffe's Split copies only they read (a label's); data layers (no bottoms,
// no translation) hand their tops in as graph inputs where a kept layer reads them, so a
// training net exports as its deploy net would. Outputs are the values no kept layer
// (nor Silence) reads after they are written, Split copies aside, in net order.
struct ModelPlan {
  std::vector<bool> kept, source;  // per layer; source: Input or a data layer
  std::vector<std::string> inputs, outputs;
};

bool scoring_layer(const std::string& type) {
  return type.find("Loss") != std::string::npos || type == "Accuracy" || type == "Silence";
}

ModelPlan plan_model(const Net& net) {
  const size_t n = static_cast<size_t>(net.num_layers());
  ModelPlan plan{std::vector<bool>(n), std::vector<bool>(n), {}, {}};
  auto spec = [&](size_t i) -> const LayerSpec& { return net.layer(static_cast<int>(i)).spec(); };
  auto reads = [&](size_t i, const std::string& blob) {
    return std::find(spec(i).bottom.begin(), spec(i).bottom.end(), blob) != spec(i).bottom.end();
  };
  std::set<std::string> dropped;  // blobs whose current value a left-out layer made
  for (size_t i = 0; i < n; ++i) {
    const LayerSpec& s = spec(i);
    plan.source[i] = s.type == "Input" || (s.bottom.empty() && !exporters().count(s.type));
    plan.kept[i] = !scoring_layer(s.type) && std::none_of(s.bottom.begin(), s.bottom.end(),
                                                           [&](const std::string& b) { return dropped.count(b) > 0; });
    for (const auto& top : s.top) plan.kept[i] ? (void)dropped.erase(top) : (void)dropped.insert(top);
  }
  // Whether a kept computing layer (or Silence) after layer w reads `blob` before it is
  // written again.
  auto read_after = [&](size_t w, const std::string& blob, bool count_silence) {
    for (size_t i = w + 1; i < n; ++i) {
      const bool reader = (plan.kept[i] && !plan.source[i]) || (count_silence && spec(i).type == "Silence");
      if (reader && reads(i, blob)) return true;
      if (std::find(spec(i).top.begin(), spec(i).top.end(), blob) != spec(i).top.end()) return false;
    }
    return false;
  };
  for (size_t i = 0; i < n; ++i)
    if (spec(i).type == "Split" && plan.kept[i] &&
        std::none_of(spec(i).top.begin(), spec(i).top.end(), [&](const std::string& t) { return read_after(i, t, false); }))
      plan.kept[i] = false;
  for (size_t i = 0; i < n; ++i) {
    if (!plan.kept[i]) continue;
    for (const auto& top : spec(i).top) {
      if (plan.source[i]) {
        if (read_after(i, top, false)) plan.inputs.push_back(top);
      } else if (spec(i).type != "Split" && !read_after(i, top, true)) {
        // The blob's last value from a kept layer, unless a later kept layer writes it again.
        bool rewritten = false;
        for (size_t j = i + 1; j < n && !rewritten; ++j)
          rewritten = plan.kept[j] && std::find(spec(j).top.begin(), spec(j).top.end(), top) != spec(j).top.end();
        if (!rewritten) plan.outputs.push_back(top);
      }
    }
  }
  return plan;
}

// The graph of `net` as it is shaped now; its inputs and outputs in *model.
Graph build_graph(const Net& net, const ModelPlan& plan, OnnxModel* model) {
  Graph g(net, {plan.inputs.begin(), plan.inputs.end()}, {plan.outputs.begin(), plan.outputs.end()});
  for (int i = 0; i < net.num_layers(); ++i) {
    const size_t li = static_cast<size_t>(i);
    const LayerSpec& spec = net.layer(i).spec();
    if (!plan.kept[li]) continue;
    if (plan.source[li]) {
      for (size_t t = 0; t < spec.top.size(); ++t)
        if (std::find(plan.inputs.begin(), plan.inputs.end(), spec.top[t]) != plan.inputs.end()) {
          const std::vector<int>& shape = net.top_vec(i)[t]->shape();
          const std::string tensor = g.write(spec.top[t]);
          g.input(tensor, shape);
          model->inputs.push_back({spec.top[t], tensor, shape, {}});
        }
      continue;
    }
    auto it = exporters().find(spec.type);
    if (it == exporters().end()) {
      std::string types;
      for (const auto& t : onnx_exportable_types()) types += (types.empty() ? "" : ", ") + t;
      throw Error("layer '" + spec.name + "' (" + spec.type +
                  ") cannot be exported to ONNX: no ONNX translation for this type. Exported types: " + types);
    }
    LayerExport e(net.layer(i), net.bottom_vec(i), net.top_vec(i), g);
    it->second(e);
  }
  for (const auto& blob : plan.outputs) {
    const std::vector<int>& shape = net.blob(blob)->shape();
    g.output(g.read(blob), shape);
    model->outputs.push_back({blob, g.read(blob), shape, {}});
  }
  return g;
}

// The model's inputs given a leading dimension of `batch`, and every kept layer reshaped
// to follow, as a forward pass would.
void reshape_inputs(Net& net, const ModelPlan& plan, int batch) {
  for (int i = 0; i < net.num_layers(); ++i) {
    const size_t li = static_cast<size_t>(i);
    if (!plan.kept[li]) continue;
    if (!plan.source[li]) {
      net.layer(i).reshape(net.bottom_vec(i), net.top_vec(i));
      continue;
    }
    for (size_t t = 0; t < net.layer(i).spec().top.size(); ++t)
      if (std::find(plan.inputs.begin(), plan.inputs.end(), net.layer(i).spec().top[t]) != plan.inputs.end()) {
        Blob& top = *net.top_vec(i)[t];
        std::vector<int> shape = top.shape();
        shape[0] = batch;
        top.reshape(shape);
      }
  }
}

// Makes `g`, the graph of `net` at its own batch size, take any batch size, by building
// the graph again at one more and keeping what changes as the batch (Graph::
// generalise_batch). The net is put back as it was, shapes and values. Returns why
// the model keeps its fixed batch size, when it must.
std::optional<std::string> take_any_batch(Net& net, const ModelPlan& plan, Graph& g) {
  if (plan.inputs.empty()) return std::nullopt;  // nothing to vary
  const Blob& first = *net.blob(plan.inputs.front());
  if (first.num_axes() == 0)
    return "the model keeps the net's shapes: input '" + plan.inputs.front() + "' has no batch axis";
  const int batch = first.shape(0);
  for (const auto& name : plan.inputs)
    if (net.blob(name)->num_axes() == 0 || net.blob(name)->shape(0) != batch)
      return "the model keeps the net's shapes: the inputs '" + plan.inputs.front() + "' and '" + name +
             "' have different batch sizes";
  if (batch < 1) return "the model keeps the net's shapes: its batch size is 0";
  // Reshaping to the larger batch hands the growing blobs new buffers: the net gets its
  // own back (the values a caller's forward left, and buffers blobs share), untouched,
  // as the guard goes, whatever is thrown.
  struct Restore {
    Net& net;
    const ModelPlan& plan;
    int batch;
    std::vector<std::pair<Blob*, std::pair<std::shared_ptr<SyncedMemory>, std::shared_ptr<SyncedMemory>>>> buffers;
    ~Restore() {
      try {
        reshape_inputs(net, plan, batch);  // the shapes it had, which it took before
      } catch (...) {
      }
      for (auto& [blob, kept] : buffers) {
        blob->data_memory() = kept.first;
        blob->diff_memory() = kept.second;
      }
    }
  } restore{net, plan, batch, {}};
  std::vector<std::vector<int>> tops;  // the shapes of every kept layer's tops, in order
  for (const auto& name : net.blob_names()) {
    Blob* b = net.blob(name);
    restore.buffers.push_back({b, {b->data_memory(), b->diff_memory()}});
  }
  for (int i = 0; i < net.num_layers(); ++i)
    if (plan.kept[static_cast<size_t>(i)] && !plan.source[static_cast<size_t>(i)])
      for (const Blob* t : net.top_vec(i)) tops.push_back(t->shape());
  const std::string fixed = "the model takes batches of exactly " + std::to_string(batch) + ": ";
  try {
    reshape_inputs(net, plan, batch + 1);
  } catch (const Error& e) {
    return fixed + "at another batch size, " + e.what();
  }
  // The batch must stay on the leading axis: folded into another one (a Reshape that
  // moves it), two batch sizes could not tell a size that follows it from one that
  // pooling or convolution rounds.
  size_t k = 0;
  for (int i = 0; i < net.num_layers(); ++i) {
    if (!plan.kept[static_cast<size_t>(i)] || plan.source[static_cast<size_t>(i)]) continue;
    for (size_t t = 0; t < net.top_vec(i).size(); ++t, ++k) {
      const std::vector<int>&before = tops[k], &after = net.top_vec(i)[t]->shape();
      if (before.size() != after.size() ||
          !std::equal(before.begin() + (before.empty() ? 0 : 1), before.end(), after.begin() + (after.empty() ? 0 : 1)))
        return fixed + "layer '" + net.layer_name(i) + "' moves the batch off the leading axis of its top '" +
               net.layer(i).spec().top[t] + "' (" + shape_string(before) + ")";
    }
  }
  try {
    OnnxModel probe;
    return g.generalise_batch(build_graph(net, plan, &probe), batch, batch + 1);
  } catch (const Error& e) {
    return fixed + "at another batch size, " + e.what();
  }
}

}  // namespace

OnnxModel save_onnx(Net& net, const std::string& path, const std::string& producer_version) {
  // What a model computes at inference is the TEST phase's forward: dropout off,
  // BatchNorm on its running statistics.
  if (net.phase() != Phase::TEST)
    throw Error("cannot export the TRAIN phase of net '" + net.name() + "' to ONNX; build the net in its TEST phase");
  const ModelPlan plan = plan_model(net);
  if (plan.outputs.empty()) throw Error("net '" + net.name() + "' has nothing to export: no layer computes an output");
  OnnxModel model;
  Graph g = build_graph(net, plan, &model);
  if (auto why = take_any_batch(net, plan, g)) {
    model.fixed_batch = *why;
  } else {
    for (auto& t : model.inputs) t.symbols = g.input_symbols(t.tensor);
    for (auto& t : model.outputs) t.symbols = g.output_symbols(t.tensor);
  }
  write_file_atomically(path, g.model(net.name().empty() ? "crema" : net.name(), producer_version));
  return model;
}

std::string describe(const OnnxTensor& t) {
  std::string dims;
  for (size_t a = 0; a < t.shape.size(); ++a) {
    const std::string symbol = a < t.symbols.size() ? t.symbols[a] : std::string();
    dims += (a ? ", " : "") + (symbol.empty() ? std::to_string(t.shape[a]) : symbol);
  }
  return t.tensor + " [" + dims + "]";
}

}  // namespace crema::io
