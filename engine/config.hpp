// A format-neutral config tree. io/ turns YAML (and later prototxt) into Nodes that
// remember where each value came from; the engine and the layers read typed
// parameters from them through MapReader, which rejects unknown keys, wrong types
// and unknown enum values with file:line:col, the key path and a suggestion.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.hpp"

namespace crema {

class Node {
 public:
  enum class Kind { Null, Scalar, Seq, Map };

  Node() = default;
  static Node scalar(std::string value, Mark mark = {}, std::string path = {});
  static Node map(Mark mark = {}, std::string path = {});
  static Node seq(Mark mark = {}, std::string path = {});
  static Node null(Mark mark = {}, std::string path = {});

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_scalar() const { return kind_ == Kind::Scalar; }
  bool is_map() const { return kind_ == Kind::Map; }
  bool is_seq() const { return kind_ == Kind::Seq; }
  const Mark& mark() const { return mark_; }
  // Where the key of this value was written (its map entry), else the value's mark.
  const Mark& key_mark() const { return key_mark_.line > 0 || key_mark_.file ? key_mark_ : mark_; }
  void set_key_mark(Mark m) { key_mark_ = std::move(m); }
  const std::string& path() const { return path_; }

  // Scalars. Each conversion throws ConfigError naming this node on a bad value.
  const std::string& str() const;
  int as_int() const;
  long long as_int64() const;
  float as_float() const;
  double as_double() const;
  bool as_bool() const;

  // Maps keep insertion order (it is the layer order a user wrote).
  const std::vector<std::pair<std::string, Node>>& entries() const { return entries_; }
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  Node& set(const std::string& key, Node value);  // replaces or appends
  bool erase(const std::string& key);             // false when the map has no such key

  const std::vector<Node>& items() const { return items_; }
  std::vector<Node>& items() { return items_; }
  void push_back(Node n) { items_.push_back(std::move(n)); }

  // A ConfigError located at this node.
  [[noreturn]] void fail(const std::string& message) const;

  // Re-roots paths (used when a net file is embedded into a solver).
  void set_path(const std::string& path);

 private:
  Kind kind_ = Kind::Null;
  std::string scalar_;
  std::vector<Node> items_;
  std::vector<std::pair<std::string, Node>> entries_;
  Mark mark_;
  Mark key_mark_;
  std::string path_;
};

// Reads a map node key by key. Every key asked for (with or without a default)
// becomes a known key; finish() rejects any key of the map that nobody asked for,
// suggesting the closest known one.
class MapReader {
 public:
  // `node` may be null/absent (treated as an empty map) or must be a map.
  explicit MapReader(const Node* node, const Mark& fallback_mark = {}, std::string path = {});

  const Node* node() const { return node_; }
  bool has(const std::string& key);
  const Node* find(const std::string& key);        // marks the key known
  const Node& required(const std::string& key);    // error when missing
  // The single values below: a key given with an empty value (`snapshot:`) is an error, a
  // missing one gives `def`.

  int get_int(const std::string& key, int def);
  long long get_int64(const std::string& key, long long def);
  // Finite numbers only (an infinity is refused at the key).
  float get_float(const std::string& key, float def);
  double get_double(const std::string& key, double def);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def);

  // Repeated fields accept a single scalar or a sequence of scalars.
  std::vector<int> get_ints(const std::string& key);
  std::vector<float> get_floats(const std::string& key);  // finite numbers only
  std::vector<std::string> get_strings(const std::string& key);

  // Enums by name. `names` lists the accepted spellings in value order. For Caffe's enums,
  // `first_number` is the number caffe.proto gives names[0] (the others follow on), and the
  // numbers are accepted as protobuf's text format accepts them (`pool: 1` is AVE).
  int get_enum(const std::string& key, const std::vector<std::string>& names, int def,
               std::optional<int> first_number = std::nullopt);

  // Nested message (absent → empty reader) and repeated messages.
  MapReader sub(const std::string& key);
  std::vector<MapReader> subs(const std::string& key);

  // Marks keys as known without reading them (e.g. keys another reader owns).
  void allow(const std::vector<std::string>& keys);
  // Fails with `message` at the first of `keys` given here (fields of an older format that
  // now live elsewhere); the keys stay unknown, so one written at the layer's level is said
  // to belong where they live now.
  void refuse(const std::vector<std::string>& keys, const std::string& message) const;
  // Throws ConfigError at the first key nothing read; `explain(key)` may give the
  // message for it (e.g. a parameter block of another layer type), "" for the usual one.
  void finish(const std::function<std::string(const std::string&)>& explain = nullptr) const;

  const Mark& mark() const { return mark_; }
  const std::string& path() const { return path_; }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // This reader is the parameter block `block` of the layer map `layer`: a key of the block
  // written at the layer's level (`stride: 2` beside `type:`), or a required one in another
  // block, is then said where it is. `layer_keys` are the layer's own keys, never the block's.
  void within(const Node* layer, std::string block, const std::vector<std::string>* layer_keys) {
    layer_ = layer, block_ = std::move(block), layer_keys_ = layer_keys;
  }

 private:
  const Node* find_value(const std::string& key);  // find(), refusing an empty value
  // Throws the error for required `key` written somewhere near but not here, if it is.
  void refuse_misplaced(const std::string& key) const;
  // Throws "belongs inside the layer's block" if `key`, one of this block's, is written
  // beside the layer's type.
  void refuse_at_layer_level(const std::string& key) const;
  const Node* node_;
  Mark mark_;
  std::string path_;
  std::vector<std::string> known_;
  const Node* layer_ = nullptr;
  std::string block_;
  const std::vector<std::string>* layer_keys_ = nullptr;
};

// The index in `names` of n's value; see get_enum for `first_number`.
int enum_value(const Node& n, const std::vector<std::string>& names, std::optional<int> first_number = std::nullopt);

}  // namespace crema
