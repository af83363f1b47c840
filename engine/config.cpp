#include "engine/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace crema {

Node Node::scalar(std::string value, Mark mark, std::string path) {
  Node n;
  n.kind_ = Kind::Scalar;
  n.scalar_ = std::move(value);
  n.mark_ = std::move(mark);
  n.path_ = std::move(path);
  return n;
}

Node Node::map(Mark mark, std::string path) {
  Node n;
  n.kind_ = Kind::Map;
  n.mark_ = std::move(mark);
  n.path_ = std::move(path);
  return n;
}

Node Node::seq(Mark mark, std::string path) {
  Node n;
  n.kind_ = Kind::Seq;
  n.mark_ = std::move(mark);
  n.path_ = std::move(path);
  return n;
}

Node Node::null(Mark mark, std::string path) {
  Node n;
  n.mark_ = std::move(mark);
  n.path_ = std::move(path);
  return n;
}

void Node::fail(const std::string& message) const { throw ConfigError(mark_, path_, message); }

const std::string& Node::str() const {
  // Several values: a YAML list, or a prototxt field written more than once (`name: "x"` on
  // two lines), which the user may not have meant as a list at all.
  if (kind_ == Kind::Seq && items_.size() > 1 && items_[1].mark().line > 0)
    fail("expected a single value, got " + std::to_string(items_.size()) + " (the second at line " +
         std::to_string(items_[1].mark().line) + "); give it once");
  if (kind_ != Kind::Scalar) fail("expected a single value, got a " +
                                  std::string(kind_ == Kind::Map ? "map" : kind_ == Kind::Seq ? "list" : "null"));
  return scalar_;
}

long long Node::as_int64() const {
  const std::string& s = str();
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE) fail("expected an integer, got '" + s + "'");
  return v;
}

int Node::as_int() const {
  const long long v = as_int64();
  if (v < -2147483648LL || v > 2147483647LL) fail("integer " + str() + " is out of range");
  return static_cast<int>(v);
}

double Node::as_double() const {
  std::string s = str();
  const std::string lower = lowercase(s);
  if (lower == "inf" || lower == ".inf" || lower == "+inf" || lower == "infinity") return INFINITY;
  if (lower == "-inf" || lower == "-.inf" || lower == "-infinity") return -INFINITY;
  if (lower == "nan" || lower == ".nan" || lower == "-nan" || lower == "-.nan")
    fail("NaN is not a usable value here; give a number");
  // strtod reads C's hexadecimal floats (0x10, 0x1p-4), which neither YAML nor Caffe's
  // text format has: integer keys refuse them, and so do these.
  if (lower.find('x') != std::string::npos) fail("expected a decimal number, got '" + s + "'");
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') fail("expected a number, got '" + s + "'");
  if (std::isnan(v)) fail("NaN is not a usable value here; give a number");  // +nan, nan(1)
  // Overflow gives ±inf: written as a number it is a typo, not a wish (inf is spelt out).
  if (errno == ERANGE && std::isinf(v)) fail("number " + s + " is out of range");
  // Underflow gives 0 for a number written as non-zero (1e-400): as much a typo.
  const std::string mantissa = lower.substr(0, lower.find('e'));
  if (v == 0.0 && mantissa.find_first_of("123456789") != std::string::npos)
    fail("number " + s + " is too small to hold: it would be 0; write 0 if that is meant");
  return v;
}

float Node::as_float() const {
  const double v = as_double();
  if (std::isfinite(v) && std::abs(v) > FLT_MAX) fail("number " + str() + " is out of range for a float (at most ~3.4e38)");
  // A value written as non-zero that a float holds as 0 (1e-400, 1e-50) would switch off what it sets.
  if (v != 0.0 && static_cast<float>(v) == 0.f)
    fail("number " + str() +
         " is too small for a float (which holds down to ~1.4e-45): it would be 0; write 0 if "
         "that is meant");
  return static_cast<float>(v);
}

bool Node::as_bool() const {
  const std::string& s = str();
  // Protobuf's text spellings and YAML 1.1's (yes/no, on/off), each in the three cases YAML allows.
  for (const char* yes : {"true", "True", "TRUE", "t", "1", "yes", "Yes", "YES", "on", "On", "ON"})
    if (s == yes) return true;
  for (const char* no : {"false", "False", "FALSE", "f", "0", "no", "No", "NO", "off", "Off", "OFF"})
    if (s == no) return false;
  fail("expected true or false, got '" + s + "'");
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

Node* Node::find(const std::string& key) {
  for (auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

Node& Node::set(const std::string& key, Node value) {
  if (kind_ == Kind::Null) kind_ = Kind::Map;
  if (Node* existing = find(key)) return *existing = std::move(value);
  entries_.emplace_back(key, std::move(value));
  return entries_.back().second;
}

bool Node::erase(const std::string& key) {
  const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

void Node::set_path(const std::string& path) {
  path_ = path;
  for (auto& [k, v] : entries_) v.set_path(path.empty() ? k : path + "." + k);
  for (size_t i = 0; i < items_.size(); ++i) items_[i].set_path(path + "[" + std::to_string(i) + "]");
}

int enum_value(const Node& n, const std::vector<std::string>& names, std::optional<int> first_number) {
  const std::string& s = n.str();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<int>(i);
  int number = 0;
  const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), number);
  const bool numeric = first_number && err == std::errc() && end == s.data() + s.size();
  if (numeric && number >= *first_number && number - *first_number < static_cast<int>(names.size()))
    return number - *first_number;
  std::string list;  // with the numbers when a number was given
  for (size_t i = 0; i < names.size(); ++i)
    list += (list.empty() ? "" : ", ") + names[i] +
            (numeric ? " (" + std::to_string(*first_number + static_cast<int>(i)) + ")" : "");
  n.fail("unknown value '" + s + "'" + did_you_mean(s, names) + "; expected one of: " + list);
}

MapReader::MapReader(const Node* node, const Mark& fallback_mark, std::string path)
    : node_(node && !node->is_null() ? node : nullptr),
      mark_(node_ ? node_->mark() : fallback_mark),
      path_(node_ ? node_->path() : std::move(path)) {
  if (node_ && !node_->is_map()) {
    // A prototxt block written twice (`transform_param { … }` on two lines) reads as a list.
    const auto& items = node_->items();
    if (node_->is_seq() && items.size() > 1 && items[0].is_map() && items[1].is_map() && items[1].mark().line > 0)
      node_->fail("expected one map of keys, got " + std::to_string(items.size()) + " (the second at line " +
                  std::to_string(items[1].mark().line) + "); give it once, with all its keys in it");
    node_->fail("expected a map of keys");
  }
}

void MapReader::refuse_at_layer_level(const std::string& key) const {
  if (!layer_ || !layer_->is_map() || key.ends_with("_param") ||
      (layer_keys_ && std::find(layer_keys_->begin(), layer_keys_->end(), key) != layer_keys_->end()))
    return;
  const Node* above = layer_->find(key);
  if (!above) return;
  const std::string where = above->path().empty() ? key : above->path();
  if (node_ && node_->find(key))
    throw ConfigError(above->key_mark(), where,
                      "'" + key + "' is given twice: here, at the layer's level, where it is not read, and inside " +
                          block_ + "; leave this one out");
  throw ConfigError(above->key_mark(), where,
                    "'" + key + "' belongs inside the layer's " + block_ + ": write " + block_ + ": {" + key +
                        ": …} (at the layer's level it is not read)");
}

void MapReader::fail(const std::string& key, const std::string& message) const {
  // A key missing here that was written beside the layer's type is a misplaced one, whatever
  // the check that noticed it is missing (kernel_size, or kernel_h and kernel_w).
  if (!node_ || !node_->find(key)) refuse_misplaced(key);
  // At the key's own value where one was written (a solver check fails after the whole
  // map is read); for an empty value (whose mark is the next token's) at its key, in the file
  // or the --set argument; else at the map.
  const Node* n = node_ ? node_->find(key) : nullptr;
  const Mark& where = !n                                             ? mark_
                      : !n->is_null()                                ? n->mark()
                      : n->key_mark().line > 0 || n->key_mark().file ? n->key_mark()
                                                                     : mark_;
  throw ConfigError(where, path_.empty() ? key : path_ + "." + key, message);
}

const Node* MapReader::find(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
  if (!node_) return nullptr;
  const Node* n = node_->find(key);
  return n && !n->is_null() ? n : nullptr;
}

const Node* MapReader::find_value(const std::string& key) {
  const Node* n = find(key);
  // `snapshot:` with nothing after it: a value left out by mistake, not a wish for the default.
  if (!n && node_ && node_->find(key)) {
    // An empty --set (--set momentum=) is often meant to remove the key: that is --unset.
    const Mark& at = node_->find(key)->key_mark();
    const bool from_set = at.file && at.file->rfind("--set ", 0) == 0;
    fail(key, "'" + key + "' is empty; give it a value, or " +
                  (from_set ? "--unset " + (path_.empty() ? key : path_ + "." + key) + " to leave it out"
                            : std::string("leave the key out")) +
                  " for its default");
  }
  return n;
}

namespace {

// "max_iter 10" on a file's last line is a key with no value to the YAML parser (the same
// line above another key is a syntax error, said as such): when `key` is one of `known`
// followed by a value, what to write instead; else "".
std::string no_colon(const std::string& key, const Node& value, const std::vector<std::string>& known) {
  const size_t space = key.find(' ');
  if (!value.is_null() || space == std::string::npos || key.find(':') != std::string::npos ||
      std::find(known.begin(), known.end(), key.substr(0, space)) == known.end())
    return "";
  return "'" + key + "' has no ':' after its key; write '" + key.substr(0, space) + ":" + key.substr(space) + "'";
}

}  // namespace

bool MapReader::has(const std::string& key) { return find(key) != nullptr; }

const Node& MapReader::required(const std::string& key) {
  const Node* n = find(key);
  if (!n) {
    if (node_ && node_->find(key)) fail(key, "required key '" + key + "' is empty");
    refuse_misplaced(key);
    fail(key, "required key '" + key + "' is missing");
  }
  return *n;
}

void MapReader::refuse_misplaced(const std::string& key) const {
  // Misspelt, or another framework's name (`lr` for base_lr): it would otherwise only be
  // reported as missing, away from the line that holds it.
  // A key this map reads already, or one nearer to another it reads (`tops` beside `top`),
  // is not the misspelling.
  std::vector<std::string> read = {key};  // first, so that a tie goes to it
  read.insert(read.end(), known_.begin(), known_.end());
  if (node_)
    for (const auto& [k, v] : node_->entries())
      if (k != key && std::find(known_.begin(), known_.end(), k) == known_.end() && closest_match(k, read) == key) {
        const std::string said = no_colon(k, v, {key});
        throw ConfigError(v.key_mark(), v.path(),
                          said.empty() ? "unknown key '" + k + "'" + did_you_mean(k, {key}) : said);
      }
  // One level of nesting too many (`layer: {conv1: {type: …}, conv2: {…}}`): the key is
  // one map down, in maps that are all this one holds.
  if (node_ && !node_->entries().empty() &&
      std::all_of(node_->entries().begin(), node_->entries().end(), [](const auto& e) { return e.second.is_map(); }))
    for (const auto& [k, v] : node_->entries())
      if (v.find(key))
        throw ConfigError(v.key_mark(), v.path(),
                          "'" + k + "' holds a map with '" + key + "' in it where the keys belong one level up: is '" +
                              k + "' meant as a name? Write name: " + k +
                              " beside the other keys instead (a net's layers are a list: - {name: " + k +
                              ", type: …})");
  if (!layer_ || !layer_->is_map()) return;
  // The block itself misspelt (convolution_parm): its keys were all written, in a map no
  // one reads.
  if (!node_ && !block_.empty())
    for (const auto& [k, v] : layer_->entries())
      if (k != block_ && v.is_map() && closest_match(k, {block_}) == block_ &&
          !(layer_keys_ && std::find(layer_keys_->begin(), layer_keys_->end(), k) != layer_keys_->end()))
        throw ConfigError(v.key_mark(), v.path().empty() ? k : v.path(),
                          "unknown key '" + k + "'" + did_you_mean(k, {block_}));
  // Written at the layer's level (`num_output: 10` beside `type: InnerProduct`).
  refuse_at_layer_level(key);
  // In another type's block (`convolution_param` on an InnerProduct).
  for (const auto& [k, v] : layer_->entries())
    if (k != block_ && k.ends_with("_param") && v.is_map() && v.find(key))
      throw ConfigError(v.key_mark(), v.path(),
                        "this layer reads its parameters from " + block_ + ", not " + k + ": rename " + k + " to " +
                            block_ + " (" + block_ + "." + key + " is missing)");
}

int MapReader::get_int(const std::string& key, int def) {
  const Node* n = find_value(key);
  return n ? n->as_int() : def;
}
long long MapReader::get_int64(const std::string& key, long long def) {
  const Node* n = find_value(key);
  return n ? n->as_int64() : def;
}
namespace {
// A key read with a default takes finite numbers only: no parameter of crema's or Caffe's
// that has a default means anything at infinity (a filler's bound, a mean, a learning-rate
// factor), and an infinite one fails far from the config (a layer of zeros, a run that
// diverges); the few that can be infinite (Clip's bounds) are read with as_float.
double finite(const Node& n, double v) {
  if (std::isinf(v)) n.fail("an infinite value is not usable here; give a finite number");
  return v;
}
}  // namespace

float MapReader::get_float(const std::string& key, float def) {
  const Node* n = find_value(key);
  return n ? static_cast<float>(finite(*n, n->as_float())) : def;
}
double MapReader::get_double(const std::string& key, double def) {
  const Node* n = find_value(key);
  return n ? finite(*n, n->as_double()) : def;
}
bool MapReader::get_bool(const std::string& key, bool def) {
  const Node* n = find_value(key);
  return n ? n->as_bool() : def;
}
std::string MapReader::get_string(const std::string& key, const std::string& def) {
  const Node* n = find_value(key);
  return n ? n->str() : def;
}

namespace {
template <class T, class F>
std::vector<T> repeated(const Node* n, F convert) {
  std::vector<T> out;
  if (!n) return out;
  if (n->is_seq()) {
    for (const auto& item : n->items()) out.push_back(convert(item));
  } else {
    out.push_back(convert(*n));
  }
  return out;
}
}  // namespace

std::vector<int> MapReader::get_ints(const std::string& key) {
  return repeated<int>(find_value(key), [](const Node& x) { return x.as_int(); });
}
std::vector<float> MapReader::get_floats(const std::string& key) {
  return repeated<float>(find_value(key), [](const Node& x) { return static_cast<float>(finite(x, x.as_float())); });
}
std::vector<std::string> MapReader::get_strings(const std::string& key) {
  return repeated<std::string>(find_value(key), [](const Node& x) { return x.str(); });
}

int MapReader::get_enum(const std::string& key, const std::vector<std::string>& names, int def,
                        std::optional<int> first_number) {
  const Node* n = find_value(key);
  return n ? enum_value(*n, names, first_number) : def;
}

MapReader MapReader::sub(const std::string& key) {
  const Node* n = find(key);
  return MapReader(n, mark_, path_.empty() ? key : path_ + "." + key);
}

std::vector<MapReader> MapReader::subs(const std::string& key) {
  std::vector<MapReader> out;
  const Node* n = find(key);
  if (!n) return out;
  if (n->is_seq()) {
    for (const auto& item : n->items()) out.emplace_back(&item, item.mark(), item.path());
  } else {
    out.emplace_back(n, n->mark(), n->path());
  }
  return out;
}

void MapReader::allow(const std::vector<std::string>& keys) {
  for (const auto& k : keys) find(k);
}

void MapReader::refuse(const std::vector<std::string>& keys, const std::string& message) const {
  if (node_)
    for (const auto& k : keys)
      if (node_->find(k)) fail(k, message);
}

void MapReader::finish(const std::function<std::string(const std::string&)>& explain) const {
  const auto known = [this](const std::string& key) {
    return std::find(known_.begin(), known_.end(), key) != known_.end();
  };
  if (node_)
    for (const auto& [key, value] : node_->entries()) {
      if (known(key)) continue;
      // The other way round: a key of the layer's own (`loss_weight`) inside its block.
      if (layer_keys_ && std::find(layer_keys_->begin(), layer_keys_->end(), key) != layer_keys_->end())
        throw ConfigError(value.key_mark(), value.path().empty() ? key : value.path(),
                          "'" + key + "' is a key of the layer itself, not of " + block_ + ": write it beside type");
      if (const std::string said = no_colon(key, value, known_); !said.empty())
        throw ConfigError(value.key_mark(), value.path().empty() ? key : value.path(), said);
      // A key not written yet is the likelier one a slip meant (tpo: beside type: is top); a
      // written one still answers where no other is near (pooling_parm beside pooling_param), and
      // another framework's name is said as crema's either way.
      std::vector<std::string> unwritten;
      for (const std::string& k : known_)
        if (!node_->find(k)) unwritten.push_back(k);
      std::string suggestion = caffe_name_for(key).empty() ? did_you_mean(key, unwritten) : "";
      if (suggestion.empty()) suggestion = did_you_mean(key, known_);
      const std::string why = suggestion.empty() && explain ? explain(key) : "";
      throw ConfigError(value.key_mark(), value.path().empty() ? key : value.path(),
                        why.empty() ? "unknown key '" + key + "'" + suggestion : why);
    }
  // A key of this block written beside the layer's type, as PyTorch's keyword arguments are
  // (`stride: 2` next to `type: Convolution`): the layer would call it only unknown, and an
  // optional key has no "missing" error to say where it belongs.
  if (layer_ && layer_->is_map())
    for (const auto& [key, value] : layer_->entries())
      if (known(key)) refuse_at_layer_level(key);
}

}  // namespace crema
