#include "io/caffe_upgrade.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "engine/error.hpp"
#include "engine/update_rules.hpp"

namespace crema::io {

namespace {

// V1LayerParameter.LayerType in enum value order, with the type name UpgradeV1LayerType
// gives each (NONE has none).
const std::vector<std::pair<std::string, std::string>>& v1_types() {
  static const std::vector<std::pair<std::string, std::string>> types = {
      {"NONE", ""},
      {"ACCURACY", "Accuracy"},
      {"BNLL", "BNLL"},
      {"CONCAT", "Concat"},
      {"CONVOLUTION", "Convolution"},
      {"DATA", "Data"},
      {"DROPOUT", "Dropout"},
      {"EUCLIDEAN_LOSS", "EuclideanLoss"},
      {"FLATTEN", "Flatten"},
      {"HDF5_DATA", "HDF5Data"},
      {"HDF5_OUTPUT", "HDF5Output"},
      {"IM2COL", "Im2col"},
      {"IMAGE_DATA", "ImageData"},
      {"INFOGAIN_LOSS", "InfogainLoss"},
      {"INNER_PRODUCT", "InnerProduct"},
      {"LRN", "LRN"},
      {"MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"},
      {"POOLING", "Pooling"},
      {"RELU", "ReLU"},
      {"SIGMOID", "Sigmoid"},
      {"SOFTMAX", "Softmax"},
      {"SOFTMAX_LOSS", "SoftmaxWithLoss"},
      {"SPLIT", "Split"},
      {"TANH", "TanH"},
      {"WINDOW_DATA", "WindowData"},
      {"ELTWISE", "Eltwise"},
      {"POWER", "Power"},
      {"SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"},
      {"HINGE_LOSS", "HingeLoss"},
      {"MEMORY_DATA", "MemoryData"},
      {"ARGMAX", "ArgMax"},
      {"THRESHOLD", "Threshold"},
      {"DUMMY_DATA", "DummyData"},
      {"SLICE", "Slice"},
      {"MVN", "MVN"},
      {"ABSVAL", "AbsVal"},
      {"SILENCE", "Silence"},
      {"CONTRASTIVE_LOSS", "ContrastiveLoss"},
      {"EXP", "Exp"},
      {"DECONVOLUTION", "Deconvolution"},
  };
  return types;
}

// The values of a repeated field: a list's items, or the single value.
std::vector<const Node*> values_of(const Node* n) {
  std::vector<const Node*> out;
  if (!n || n->is_null()) return out;
  if (n->is_seq())
    for (const auto& item : n->items()) out.push_back(&item);
  else
    out.push_back(n);
  return out;
}

Node copy_with_key_mark(const Node& value, const Mark& key_mark) {
  Node out = value;
  out.set_key_mark(key_mark);
  return out;
}

// An empty map carrying `like`'s marks and path, to rebuild `like` entry by entry
// (Node has no erase; rebuilding also lets a renamed key keep its position).
Node empty_like(const Node& like) {
  Node out = Node::map(like.mark(), like.path());
  out.set_key_mark(like.key_mark());
  return out;
}

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

bool is_upper_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

// V1's `type: CONVOLUTION` (or its number) → `type: Convolution`. A current type
// name is left as it is; an unknown upper-case name is a V1 typo.
Node upgrade_v1_type(const Node& type) {
  if (!type.is_scalar()) return type;
  const std::string& s = type.str();
  const auto& types = v1_types();
  int value = -1;
  if (all_digits(s) && s.size() < 4) {
    value = std::stoi(s);
  } else {
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i].first == s) value = static_cast<int>(i);
  }
  if (value < 0 || value >= static_cast<int>(types.size()) || value == 0) {
    if (!is_upper_name(s) && !all_digits(s)) return type;
    std::vector<std::string> names;
    for (size_t i = 1; i < types.size(); ++i) names.push_back(types[i].first);
    type.fail("unknown V1 layer type '" + s + "'" + did_you_mean(s, names) +
              "; V1 types are CONVOLUTION, POOLING, INNER_PRODUCT, RELU, SOFTMAX_LOSS, ... (or write the current "
              "name, e.g. Convolution)");
  }
  Node out = Node::scalar(types[static_cast<size_t>(value)].second, type.mark(), type.path());
  out.set_key_mark(type.key_mark());
  return out;
}

// V1's per-blob lists (blobs_lr: 1 blobs_lr: 2, weight_decay, param names,
// blob_share_mode) → one `param` message per blob, as UpgradeV1LayerParameter.
Node v1_param_specs(const Node& v1) {
  static const std::vector<std::pair<std::string, std::string>> fields = {
      {"param", "name"}, {"blob_share_mode", "share_mode"}, {"blobs_lr", "lr_mult"}, {"weight_decay", "decay_mult"}};
  std::vector<Node> specs;
  Mark first_key;
  // A V1 param is a blob's name; a map there is the current format's ({lr_mult: 1}) under
  // the plural key, which would otherwise be said as a name that is a map.
  for (const Node* p : values_of(v1.find("param")))
    if (p->is_map())
      p->fail(
          "a param map ({lr_mult: …}) is the current format's, but this net lists its layers under 'layers', "
          "Caffe's V1 key, where a param is a shared blob's name: write 'layer:' for the net's list");
  for (const auto& [v1_key, key] : fields) {
    const std::vector<const Node*> values = values_of(v1.find(v1_key));
    for (size_t i = 0; i < values.size(); ++i) {
      if (specs.empty()) first_key = values[i]->key_mark();
      if (specs.size() <= i) specs.push_back(Node::map(values[i]->mark()));
      specs[i].set(key, copy_with_key_mark(*values[i], values[i]->key_mark()));
    }
  }
  if (specs.empty()) return Node();
  Node list = Node::seq(specs.front().mark());
  list.set_key_mark(first_key);
  for (auto& s : specs) list.push_back(std::move(s));
  return list;
}

Node upgrade_v1_layer(const Node& v1) {
  if (!v1.is_map()) return v1;  // NetSpec reports it
  if (const Node* v0 = v1.find("layer"))
    throw ConfigError(v0->key_mark(), v0->path(),
                      "this is a V0 net (layers { layer { ... } }, before 2014), which crema cannot read; upgrade it "
                      "with Caffe's own build/tools/upgrade_net_proto_text first (a Caffe build's tool: crema's "
                      "convert reads V1 nets and later)");
  static const std::vector<std::string> first = {"name", "type", "bottom", "top"};
  static const std::vector<std::string> per_blob = {"param", "blob_share_mode", "blobs_lr", "weight_decay"};
  Node out = empty_like(v1);
  for (const auto& key : first)
    if (const Node* n = v1.find(key)) out.set(key, key == "type" ? upgrade_v1_type(*n) : *n);
  Node params = v1_param_specs(v1);
  if (!params.is_null()) out.set("param", std::move(params));
  for (const auto& [key, value] : v1.entries()) {
    if (std::find(first.begin(), first.end(), key) != first.end() ||
        std::find(per_blob.begin(), per_blob.end(), key) != per_blob.end())
      continue;
    // A misspelt V1 list key would otherwise be checked against the current keys only,
    // which have no blobs_lr to suggest.
    if (const std::string hint = did_you_mean(key, {"blobs_lr", "weight_decay", "blob_share_mode"}); !hint.empty())
      throw ConfigError(value.key_mark(), value.path(), "unknown key '" + key + "'" + hint);
    out.set(key, value);
  }
  return out;
}

std::string type_of(const Node& layer) {
  const Node* t = layer.is_map() ? layer.find("type") : nullptr;
  return t && t->is_scalar() ? t->str() : std::string();
}

// Caffe moved scale, mean_file, crop_size and mirror from the data layers' own
// parameters into transform_param (UpgradeNetDataTransformation). Where transform_param
// holds the key too with another value, transform_param's is kept (a current-format net's
// data layer reads only that one in Caffe) and the old one is warned about: silently, either
// would leave a value the user wrote unused.
// Two scalars that read as one value: numbers by value (1 and 1.0), booleans by meaning
// (true and 1), else their text.
bool same_value(const Node& a, const Node& b) {
  if (!a.is_scalar() || !b.is_scalar()) return false;
  if (a.str() == b.str()) return true;
  try {
    return a.as_double() == b.as_double();
  } catch (const Error&) {
  }
  try {
    return a.as_bool() == b.as_bool();
  } catch (const Error&) {
  }
  return false;
}

bool upgrade_data_transform(Node& layer) {
  static const std::vector<std::pair<std::string, std::string>> owners = {
      {"Data", "data_param"}, {"ImageData", "image_data_param"}, {"WindowData", "window_data_param"}};
  static const std::vector<std::string> moved = {"scale", "mean_file", "crop_size", "mirror"};
  const std::string type = type_of(layer);
  for (const auto& [owner_type, param_key] : owners) {
    if (type != owner_type) continue;
    Node* params = layer.find(param_key);
    if (!params || !params->is_map()) return false;
    Node kept = empty_like(*params);
    std::vector<std::pair<std::string, Node>> taken;
    for (const auto& [key, value] : params->entries()) {
      if (std::find(moved.begin(), moved.end(), key) != moved.end())
        taken.emplace_back(key, value);
      else
        kept.set(key, value);
    }
    if (taken.empty()) return false;
    const Mark params_key_mark = params->key_mark();
    *params = std::move(kept);
    Node* transform = layer.find("transform_param");
    if (!transform || !transform->is_map()) {
      Node fresh = Node::map(taken.front().second.key_mark());
      fresh.set_key_mark(params_key_mark);
      transform = &layer.set("transform_param", std::move(fresh));
    }
    for (auto& [key, value] : taken) {
      if (const Node* there = transform->find(key)) {
        if (!same_value(*there, value))
          spdlog::warn(
              "{}: {}.{}: '{}' is set both here (Caffe's old place for it) and in transform_param ({}), with "
              "different values; transform_param's {} is used: remove this one",
              value.key_mark().str(), param_key, key, key, there->mark().str(), there->is_scalar() ? there->str() : "");
        continue;
      }
      transform->set(key, std::move(value));
    }
    return true;
  }
  return false;
}

// Caffe's BatchNorm computes its statistics itself; older nets declared its three
// blobs with param entries, which UpgradeNetBatchNorm freezes.
bool upgrade_batch_norm(Node& layer) {
  if (type_of(layer) != "BatchNorm") return false;
  Node* params = layer.find("param");
  if (!params || !params->is_seq() || params->items().size() != 3) return false;
  bool changed = false;
  for (auto& p : params->items()) {
    if (!p.is_map()) return false;
    for (const char* key : {"lr_mult", "decay_mult"}) {
      const Node* v = p.find(key);
      if (v && v->is_scalar() && v->str() == "0") continue;
      p.set(key, Node::scalar("0", p.mark()));
      changed = true;
    }
  }
  return changed;
}

// Net-level `input: "data"` with `input_dim` ×4 or `input_shape { dim ... }` → an
// Input layer named "input" (UpgradeNetInput). Without shapes (old .caffemodel
// files) the input fields are only dropped, as in Caffe, unless a layer reads them: that
// layer's "not produced by any earlier layer" would hide why.
std::optional<Node> input_layer(const Node& net) {
  const Node* input = net.find("input");
  const Node* dims = net.find("input_dim");
  const Node* shapes = net.find("input_shape");
  if (!input) {
    if (dims || shapes) {
      const Node& n = dims ? *dims : *shapes;
      throw ConfigError(n.key_mark(), n.path(), "input dimensions given without 'input' naming the input blob(s)");
    }
    return std::nullopt;
  }
  const std::vector<const Node*> names = values_of(input);
  if (!dims && !shapes) {
    const Node* layers = net.find("layer") ? net.find("layer") : net.find("layers");
    const auto listed = [&](const char* key, const std::string& blob) {
      for (const Node* layer : values_of(layers))
        for (const Node* b : layer->is_map() ? values_of(layer->find(key)) : std::vector<const Node*>{})
          if (b->is_scalar() && b->str() == blob) return true;
      return false;
    };
    for (const Node* name : names)
      if (name->is_scalar() && listed("bottom", name->str()) && !listed("top", name->str()))
        throw ConfigError(input->key_mark(), input->path(),
                          "input '" + name->str() +
                              "' has no shape, and the net's layers read it: give input_dim lines (N, C, H, W) "
                              "or an input_shape { dim: … } after it, as a deploy net's header does");
    return std::nullopt;
  }
  if (names.empty()) throw ConfigError(input->key_mark(), input->path(), "'input' names no blob; name at least one");
  if (dims && shapes)
    throw ConfigError(shapes->key_mark(), shapes->path(), "give the inputs' shapes with input_shape or input_dim, not both");
  Node param = Node::map(dims ? dims->mark() : shapes->mark());
  param.set_key_mark(dims ? dims->key_mark() : shapes->key_mark());
  if (shapes) {
    const std::vector<const Node*> s = values_of(shapes);
    if (s.size() != names.size())
      throw ConfigError(shapes->key_mark(), shapes->path(),
                        std::to_string(s.size()) + " input_shape(s) for " + std::to_string(names.size()) +
                            " input(s); give one input_shape per input");
    param.set("shape", copy_with_key_mark(*shapes, shapes->key_mark()));
  } else {
    const std::vector<const Node*> d = values_of(dims);
    if (d.size() != 4 * names.size())
      throw ConfigError(dims->key_mark(), dims->path(),
                        std::to_string(d.size()) + " input_dim value(s) for " + std::to_string(names.size()) +
                            " input(s); give 4 per input (N, C, H, W)");
    Node shape_list = Node::seq(d.front()->mark());
    shape_list.set_key_mark(dims->key_mark());
    for (size_t i = 0; i < names.size(); ++i) {
      Node dim = Node::seq(d[4 * i]->mark());
      dim.set_key_mark(d[4 * i]->key_mark());
      for (size_t j = 0; j < 4; ++j) dim.push_back(*d[4 * i + j]);
      Node shape = Node::map(d[4 * i]->mark());
      shape.set("dim", std::move(dim));
      shape_list.push_back(std::move(shape));
    }
    param.set("shape", names.size() == 1 ? Node(shape_list.items().front()) : std::move(shape_list));
  }
  Node layer = Node::map(input->mark());
  layer.set_key_mark(input->key_mark());
  layer.set("name", Node::scalar("input", input->mark()));
  layer.set("type", Node::scalar("Input", input->mark()));
  layer.set("top", copy_with_key_mark(*input, input->key_mark()));
  layer.set("input_param", std::move(param));
  return layer;
}

}  // namespace

std::string v1_type_name(int value) {
  const auto& types = v1_types();
  return value >= 0 && static_cast<size_t>(value) < types.size() ? types[static_cast<size_t>(value)].second : "";
}

std::vector<std::string> upgrade_net(Node& net) {
  std::vector<std::string> notes;
  if (!net.is_map()) return notes;
  const Node* v1 = net.find("layers");
  if (v1 && net.find("layer"))
    throw ConfigError(v1->key_mark(), v1->path(),
                      "the net has both 'layer' (current format) and 'layers' (V1 format); use one of them");
  std::optional<Node> input = input_layer(net);
  const bool had_inputs = net.find("input") || net.find("input_dim") || net.find("input_shape");

  Node out = empty_like(net);
  for (const auto& [key, value] : net.entries()) {
    if (key == "input" || key == "input_dim" || key == "input_shape") continue;
    if (key != "layers") {
      out.set(key, value);
      continue;
    }
    Node layers = Node::seq(value.mark());
    layers.set_key_mark(value.key_mark());
    for (const Node* l : values_of(&value)) layers.push_back(upgrade_v1_layer(*l));
    out.set("layer", std::move(layers));
    notes.push_back("V1 'layers' → 'layer'");
  }
  if (had_inputs) notes.push_back(input ? "net 'input' fields → an Input layer" : "net 'input' fields dropped");

  Node* layers = out.find("layer");
  if (layers && layers->is_map()) {  // one `layer { }` in a prototxt
    Node list = Node::seq(layers->mark());
    list.set_key_mark(layers->key_mark());
    list.push_back(std::move(*layers));
    *layers = std::move(list);
  }
  if (input) {
    if (!layers) layers = &out.set("layer", Node::seq(input->mark()));
    if (layers->is_seq()) layers->items().insert(layers->items().begin(), std::move(*input));
  }
  if (layers && layers->is_seq()) {
    bool data = false, batch_norm = false;
    for (auto& l : layers->items()) {
      if (!l.is_map()) continue;
      data = upgrade_data_transform(l) || data;
      batch_norm = upgrade_batch_norm(l) || batch_norm;
    }
    if (data) notes.push_back("data layer transformation fields → transform_param");
    if (batch_norm) notes.push_back("BatchNorm param entries frozen (lr_mult: 0)");
  }
  out.set_path(net.path());
  net = std::move(out);
  return notes;
}

std::vector<std::string> upgrade_solver(Node& solver) {
  std::vector<std::string> notes;
  if (!solver.is_map()) return notes;
  const Node* legacy = solver.find("solver_type");
  const Node* net_param = solver.find("net_param");
  if (legacy || net_param) {
    if (legacy && solver.find("type"))
      throw ConfigError(legacy->key_mark(), legacy->path(),
                        "both type and the legacy solver_type are set; keep only type");
    if (net_param && solver.find("net"))
      throw ConfigError(net_param->key_mark(), net_param->path(),
                        "both net (a file) and net_param (an inline net) are set; keep one");
    Node out = empty_like(solver);
    for (const auto& [key, value] : solver.entries()) {
      if (key == "solver_type") {
        Node type = Node::scalar(legacy_update_rule(value).type, value.mark());
        type.set_key_mark(value.key_mark());
        out.set("type", std::move(type));
        notes.push_back("'solver_type' → 'type'");
      } else {
        out.set(key == "net_param" ? "net" : key, value);
      }
    }
    if (net_param) notes.push_back("'net_param' → an inline 'net'");
    out.set_path(solver.path());
    solver = std::move(out);
  }
  if (Node* net = solver.find("net"); net && net->is_map())
    for (auto& n : upgrade_net(*net)) notes.push_back(std::move(n));
  return notes;
}

bool is_solver_message(const Node& root) {
  if (!root.is_map() || root.find("layer") || root.find("layers")) return false;
  for (const char* key : {"net", "net_param", "train_net", "test_net", "train_net_param", "test_net_param", "base_lr",
                          "max_iter", "lr_policy"})
    if (root.find(key)) return true;
  return false;
}

Node caffe_text_layout(const Node& root) {
  const Node* net = root.find("net");
  if (!is_solver_message(root) || !net || !net->is_map()) return root;
  Node out = empty_like(root);
  for (const auto& [key, value] : root.entries()) out.set(key == "net" ? "net_param" : key, value);
  return out;
}

}  // namespace crema::io
