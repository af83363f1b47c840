#include "io/yaml_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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

Node convert(const YAML::Node& y, const std::shared_ptr<const std::string>& file, const std::string& path) {
  const Mark mark = make_mark(file, y.Mark());
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
        n.push_back(convert(item, file, path + "[" + std::to_string(i) + "]"));
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
        Node child = convert(kv.second, file, path.empty() ? key : path + "." + key);
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
    return convert(root, file, "");
  } catch (const YAML::Exception& e) {
    Mark m = make_mark(file, e.mark);
    throw ConfigError(m, "", "YAML syntax error: " + e.msg);
  }
}

void emit(YAML::Emitter& out, const Node& n) {
  switch (n.kind()) {
    case Node::Kind::Null: out << YAML::Null; break;
    case Node::Kind::Scalar: out << n.str(); break;
    case Node::Kind::Seq:
      out << YAML::BeginSeq;
      for (const auto& item : n.items()) emit(out, item);
      out << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.entries()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

Node load_yaml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read config file '" + path + "': " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_with_name(ss.str(), path);
}

Node parse_yaml(const std::string& text, const std::string& source_name) { return parse_with_name(text, source_name); }

Node parse_yaml_value(const std::string& text) {
  Node n = parse_with_name(text, "<command line>");
  return n;
}

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  emit(out, node);
  return out.c_str();
}

}  // namespace crema::io
