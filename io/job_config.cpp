#include "io/job_config.hpp"

#include <filesystem>

#include "engine/error.hpp"
#include "io/yaml_config.hpp"

namespace crema::io {

namespace fs = std::filesystem;

namespace {

bool looks_like_solver(const Node& n) { return n.is_map() && n.find("net") && (n.find("base_lr") || n.find("max_iter")); }

// Replaces a `net: path` entry by the net file's contents.
void resolve_net(Node& root, const std::string& solver_path) {
  Node* net = root.find("net");
  if (!net || !net->is_scalar()) return;
  fs::path p(net->str());
  if (p.is_relative()) p = fs::path(solver_path).parent_path() / p;
  if (!fs::exists(p)) net->fail("net file '" + p.string() + "' does not exist (paths are relative to the solver file)");
  Node loaded = load_yaml_file(p.string());
  if (!loaded.is_map()) loaded.fail("a net file must be a map with 'name' and 'layer'");
  loaded.set_path("net");
  *net = std::move(loaded);
}

}  // namespace

void apply_override(Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  Mark mark;
  mark.file = std::make_shared<const std::string>("--set " + assignment);
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(mark, "", "expected --set key.path=value, e.g. --set max_iter=1000");
  const std::string key_path = assignment.substr(0, eq);
  Node value = parse_yaml_value(assignment.substr(eq + 1));
  Node* cur = &root;
  std::string path;
  size_t start = 0;
  while (start <= key_path.size()) {
    size_t dot = key_path.find('.', start);
    std::string part = key_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    int index = -1;
    const size_t bracket = part.find('[');
    if (bracket != std::string::npos) {
      const std::string digits = part.substr(bracket + 1, part.size() - bracket - 2);
      if (part.back() != ']' || digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
        throw ConfigError(mark, key_path, "'" + part + "' is not a valid list index; write key[N] with N >= 0");
      index = std::stoi(digits);
      part = part.substr(0, bracket);
    }
    if (part.empty()) throw ConfigError(mark, key_path, "empty key in --set path");
    path += (path.empty() ? "" : ".") + part;
    const bool last = dot == std::string::npos;
    if (!cur->is_map() && !cur->is_null()) throw ConfigError(mark, path, "cannot set a key inside a non-map value");
    Node* child = cur->find(part);
    if (!child) {
      if (index >= 0) throw ConfigError(mark, path, "no list '" + part + "' to index");
      child = &cur->set(part, last ? Node() : Node::map(mark, path));
      child->set_key_mark(mark);
    }
    if (index >= 0) {
      if (!child->is_seq() || index >= static_cast<int>(child->items().size()))
        throw ConfigError(mark, path, "index [" + std::to_string(index) + "] is out of range");
      child = &child->items()[static_cast<size_t>(index)];
      path += "[" + std::to_string(index) + "]";
    }
    if (last) {
      Node v = value;
      v.set_path(path);
      // Keep the command-line mark so errors point at the --set argument.
      Node marked = v.is_scalar() ? Node::scalar(v.str(), mark, path) : v;
      marked.set_key_mark(mark);
      *child = std::move(marked);
      return;
    }
    cur = child;
    start = dot + 1;
  }
}

std::shared_ptr<Node> load_solver_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto root = std::make_shared<Node>(load_yaml_file(path));
  if (!root->is_map()) root->fail("a solver file must be a map of solver keys (base_lr, max_iter, net, ...)");
  resolve_net(*root, path);
  for (const auto& o : overrides) apply_override(*root, o);
  return root;
}

std::shared_ptr<Node> load_net_config(const std::string& path) {
  auto root = std::make_shared<Node>(load_yaml_file(path));
  if (!root->is_map()) root->fail("a net file must be a map with 'name' and 'layer'");
  if (looks_like_solver(*root)) {
    resolve_net(*root, path);
    return std::make_shared<Node>(*root->find("net"));
  }
  return root;
}

}  // namespace crema::io
