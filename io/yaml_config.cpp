#include "io/yaml_config.hpp"

#include <yaml-cpp/yaml.h>

namespace crema::io {

namespace {

Mark make_mark(const std::shared_ptr<const std::string>& file, const YAML::Mark& m) {
  Mark out;
  out.file = file;
  if (m.line >= 0) {
    out.line = m.line + 1;
    out.col = m.column + 1;
  }
  return out;
}

// Recursive aliases (`a: &x [*x]`) make yaml-cpp's tree cyclic and alias fan-out can
// explode its size, so depth and node count are bounded.
constexpr int kMaxDepth = 100;
constexpr long kMaxNodes = 1000000;

Node convert(const YAML::Node& y, const std::shared_ptr<const std::string>& file, const std::string& path, int depth,
             long& nodes) {
  const Mark mark = make_mark(file, y.Mark());
  if (depth > kMaxDepth) throw ConfigError(mark, path, "nested more than 100 levels deep (a recursive YAML alias?)");
  if (++nodes > kMaxNodes) throw ConfigError(mark, path, "more than a million values (runaway YAML aliases?)");
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Node::null(mark, path);
    case YAML::NodeType::Scalar:
      return Node::scalar(y.Scalar(), mark, path);
    case YAML::NodeType::Sequence: {
      Node n = Node::seq(mark, path);
      size_t i = 0;
      for (const auto& item : y) {
        n.push_back(convert(item, file, path + "[" + std::to_string(i) + "]", depth + 1, nodes));
        ++i;
      }
      return n;
    }
    case YAML::NodeType::Map: {
      Node n = Node::map(mark, path);
      for (const auto& kv : y) {
        const Mark key_mark = make_mark(file, kv.first.Mark());
        if (!kv.first.IsScalar()) throw ConfigError(key_mark, path, "map keys must be plain names");
        const std::string key = kv.first.Scalar();
        if (n.find(key))
          throw ConfigError(key_mark, path.empty() ? key : path + "." + key,
                            "duplicate key '" + key + "'; for a repeated field use a list: " + key + ": [a, b]");
        Node child = convert(kv.second, file, path.empty() ? key : path + "." + key, depth + 1, nodes);
        child.set_key_mark(key_mark);
        n.set(key, std::move(child));
      }
      return n;
    }
  }
  return Node();
}

Node parse_with_name(const std::string& text, const std::string& name) {
  auto file = std::make_shared<const std::string>(name);
  try {
    YAML::Node root = YAML::Load(text);
    long nodes = 0;
    return convert(root, file, "", 0, nodes);
  } catch (const YAML::Exception& e) {
    Mark m = make_mark(file, e.mark);
    throw ConfigError(m, "", "YAML syntax error: " + e.msg);
  }
}

// Width of `n` written in flow style, roughly (quotes are not counted).
size_t flow_width(const Node& n) {
  switch (n.kind()) {
    case Node::Kind::Null: return 1;
    case Node::Kind::Scalar: return n.str().size();
    case Node::Kind::Seq: {
      size_t w = 2;
      for (const auto& item : n.items()) w += flow_width(item) + 2;
      return w;
    }
    case Node::Kind::Map: {
      size_t w = 2;
      for (const auto& [k, v] : n.entries()) w += k.size() + 2 + flow_width(v) + 2;
      return w;
    }
  }
  return 0;
}

// Block style at the top, flow style for whatever fits on its line, so a converted
// net reads like a hand-written one: `param: [{lr_mult: 1}, {lr_mult: 2}]`.
void emit(YAML::Emitter& out, const Node& n, size_t column) {
  constexpr size_t kLineWidth = 100;
  const bool nested = column > 0;
  switch (n.kind()) {
    case Node::Kind::Null: out << YAML::Null; break;
    case Node::Kind::Scalar: out << n.str(); break;
    case Node::Kind::Seq:
      if (nested && column + flow_width(n) <= kLineWidth) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : n.items()) emit(out, item, column + 2);
      out << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      if (nested && column + flow_width(n) <= kLineWidth) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.entries()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v, column + k.size() + 4);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

Node parse_yaml(const std::string& text, const std::string& source_name) { return parse_with_name(text, source_name); }

Node parse_yaml_value(const std::string& text) {
  Node n = parse_with_name(text, "<command line>");
  return n;
}

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  emit(out, node, 0);
  std::string text = out.c_str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

}  // namespace crema::io
