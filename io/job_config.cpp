#include "io/job_config.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.hpp"
#include "io/caffe_binary.hpp"
#include "io/caffe_upgrade.hpp"
#include "io/files.hpp"
#include "io/prototxt.hpp"
#include "io/yaml_config.hpp"

namespace crema::io {

namespace fs = std::filesystem;

namespace {

// A prototxt message block (`layer {`, `shape <`) outside comments; YAML has a ':'
// between a key and its '{'.
// Scanned by hand: std::regex recurses per character and overflows the stack on a long word.
bool has_message_block(const std::string& text) {
  const auto word_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  const auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = line.substr(0, line.find('#'));
    for (size_t i = 0; i < line.size();) {
      const bool boundary = i == 0 || std::strchr(" \t\r\f\v{};,", line[i - 1]) != nullptr;
      if (!word_start(line[i]) || !boundary) {
        ++i;
        continue;
      }
      while (i < line.size() && word_char(line[i])) ++i;
      size_t j = i;
      while (j < line.size() && std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j < line.size() && (line[j] == '{' || line[j] == '<')) return true;
    }
  }
  return false;
}

void log_upgrade(const std::string& path, const std::vector<std::string>& notes) {
  if (notes.empty()) return;
  std::string what;
  for (const auto& n : notes) what += (what.empty() ? "" : "; ") + n;
  spdlog::info("{}: upgraded from an older Caffe format ({}); crema convert {} -o NEW.prototxt writes the upgraded file",
               path, what, path);
}

// Where a solver's `net: <written>` may be, in the order looked at.
std::vector<fs::path> places_beside_solver(const std::string& written, const std::string& solver_path) {
  const fs::path path(written);
  std::vector<fs::path> candidates;
  const fs::path solver_dir = fs::path(solver_path).parent_path();
  if (path.is_relative() && !solver_dir.empty()) candidates.push_back(solver_dir / path);
  candidates.push_back(path);
  return candidates;
}

// Replaces a `net: path` entry by the net file's contents.
void resolve_net(Node& root, const std::string& solver_path) {
  reject_split_nets(root);
  Node* net = root.find("net");
  if (!net || !net->is_scalar()) return;
  std::string looked;
  const auto found = find_beside_solver(net->str(), solver_path, &looked);
  if (!found) {
    for (const fs::path& place : places_beside_solver(net->str(), solver_path))
      if (std::error_code ec; fs::is_directory(place, ec))
        net->fail("'" + place.string() + "' is a folder; give the net file in it");
    net->fail("net file '" + net->str() + "' does not exist (looked for " + looked + ")");
  }
  Node loaded;
  try {
    loaded = load_net_file(*found);
  } catch (const ConfigError& e) {
    if (e.mark().line > 0) throw;  // a mistake inside the net file, at its line
    net->fail(e.what());           // not a net at all (weights, a snapshot): the solver's line names it
  }
  loaded.set_path("net");
  *net = std::move(loaded);
}

// The solver with its net resolved and everything upgraded.
std::shared_ptr<Node> load_solver(Node loaded, const std::string& path) {
  auto root = std::make_shared<Node>(std::move(loaded));
  log_upgrade(path, upgrade_solver(*root));
  resolve_net(*root, path);
  return root;
}

}  // namespace

std::optional<ConfigFormat> config_format_for(const std::string& path) {
  const std::string ext = lowercase(fs::path(path).extension().string());
  if (ext == ".prototxt" || ext == ".pt" || ext == ".pbtxt" || ext == ".prototext") return ConfigFormat::Prototxt;
  if (ext == ".yaml" || ext == ".yml") return ConfigFormat::Yaml;
  return std::nullopt;
}

Node load_config_file(const std::string& path) {
  // A path that names no config is a mistake in the command (exit 2), said at the file; the
  // solver's net: line is named instead where the net file is the one (resolve_net).
  const Mark at_file{std::make_shared<const std::string>(path)};
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(at_file, "", "this is a folder; give the solver or net file in it");
  // A named pipe with no writer blocks the open below until one comes: say what it waits for.
  if (std::filesystem::is_fifo(path, ec) && path != "/dev/stdin" && !path.starts_with("/dev/fd/") &&
      !path.starts_with("/proc/self/fd/"))  // a pipe the shell made (<(…)) has its writer already
    spdlog::info("{}: a named pipe; reading the config waits until a program writes to it", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    if (error == ENOENT) throw ConfigError(at_file, "", "no such file; check the path");
    throw Error("cannot read config file '" + path + "': " + std::strerror(error));
  }
  // A config is a few kilobytes; reading one from /dev/zero, or a dataset given by mistake,
  // would fill the memory first.
  constexpr size_t kMaxConfigBytes = 64 << 20;
  std::string text;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes)
      throw ConfigError(
          at_file, "",
          std::string("this file is larger than 64 MiB, so it is not a config (weights or a database given as the "
                      "config?): give the solver or net file, and weights with --weights"));
  }
  // A binary file (weights, a snapshot, an image) given as the config: the parsers would stop
  // at some byte of it with a message about escapes or keys.
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    if (text.rfind("\xff\xfe", 0) == 0 || text.rfind("\xfe\xff", 0) == 0)  // PowerShell's `>` writes these
      throw ConfigError(Mark{std::make_shared<const std::string>(path)}, "",
                        "this file is UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)");
    if (starts_as_hdf5(text))
      throw ConfigError(Mark{std::make_shared<const std::string>(path)}, "",
                        "this is an HDF5 file (weights or a snapshot), not a config: give the solver or net file, "
                        "weights with --weights and a solver state with --snapshot");
    // Caffe's binary weights: most often given in place of the net, the two options swapped.
    bool weights = false;
    try {
      const Weights layers = read_caffemodel(path);
      weights = std::any_of(layers.begin(), layers.end(), [](const LayerWeights& l) { return !l.blobs.empty(); });
    } catch (const Error&) {
    }
    if (weights)
      throw ConfigError(Mark{std::make_shared<const std::string>(path)}, "",
                        "this is a binary .caffemodel (Caffe's weights), not a config: give the net or solver file as "
                        "the config and the weights with --weights (were the two swapped?)");
    const size_t line_start = text.rfind('\n', nul);
    const Mark m{std::make_shared<const std::string>(path),
                 static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n')) + 1,
                 static_cast<int>(nul - (line_start == std::string::npos ? 0 : line_start + 1)) + 1};
    throw ConfigError(m, "",
                      "this is not a text file (it holds a NUL byte here), so not a config; is it the right file (a "
                      ".caffemodel, an image or a database given as the config)?");
  }
  std::optional<ConfigFormat> format = config_format_for(path);
  if (!format && has_message_block(text)) format = ConfigFormat::Prototxt;
  if (format) return *format == ConfigFormat::Prototxt ? parse_prototxt(text, path) : parse_yaml(text, path);
  // A flat prototxt (a solver) is mostly valid YAML with the same meaning; one YAML
  // rejects (a repeated key) is read as prototxt.
  try {
    return parse_yaml(text, path);
  } catch (const ConfigError& yaml_error) {
    try {
      return parse_prototxt(text, path);
    } catch (const ConfigError&) {
      throw yaml_error;
    }
  }
}

void reject_split_nets(const Node& root) {
  for (const char* key : {"train_net", "test_net", "train_net_param", "test_net_param"})
    if (const Node* n = root.find(key))
      throw ConfigError(n->key_mark(), n->path(),
                        std::string("'") + key +
                            "' (separate train and test nets) is not supported: crema builds the TRAIN and TEST nets "
                            "from one net; give it with 'net:' and mark phase-only layers with include: {phase: TRAIN} "
                            "or {phase: TEST}");
}

std::optional<std::string> find_beside_solver(const std::string& written, const std::string& solver_path,
                                              std::string* looked) {
  const std::vector<fs::path> candidates = places_beside_solver(written, solver_path);
  if (looked)
    *looked = (candidates.size() > 1 ? "'" + candidates[0].string() + "' next to the solver and " : std::string()) +
              "'" + written + "' from the working directory";
  for (const fs::path& p : candidates) {
    std::error_code ec;  // a name too long for the file system is just not there
    // Not only regular files: a net may come from a pipe (<(generate_net)), as the solver may.
    if (fs::exists(p, ec) && !fs::is_directory(p, ec)) return p.string();
  }
  return std::nullopt;
}

Node load_net_file(const std::string& path) {
  Node loaded = load_config_file(path);
  if (!loaded.is_map()) loaded.fail("a net file must be a map with 'name' and 'layer'");
  log_upgrade(path, upgrade_net(loaded));
  return loaded;
}

void apply_override(Node& root, const std::string& assignment) {
  // "~key.path" removes the key (--unset key.path puts it so, keeping the order of the
  // command line's --set and --unset); anything else is "key.path=value".
  const bool unset = !assignment.empty() && assignment[0] == '~';
  const size_t eq = assignment.find('=');
  Mark mark;
  mark.file = std::make_shared<const std::string>(unset ? "--unset " + assignment.substr(1) : "--set " + assignment);
  if (unset && eq != std::string::npos)
    throw ConfigError(mark, "",
                      "--unset takes a key alone (--unset key.path); a value is given with --set key.path=value");
  if (!unset && (eq == std::string::npos || eq == 0))
    throw ConfigError(mark, "", "expected --set key.path=value, e.g. --set max_iter=1000");
  const std::string key_path = unset ? assignment.substr(1) : assignment.substr(0, eq);
  if (key_path.empty()) throw ConfigError(mark, "", "expected --unset key.path, e.g. --unset min_lr");
  Node value = unset ? Node() : parse_yaml_value(assignment.substr(eq + 1), mark, key_path);
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
      if (part.back() != ']' || digits.empty() || digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        throw ConfigError(mark, key_path, "'" + part + "' is not a valid list index; write key[N] with N >= 0");
      index = std::stoi(digits);
      part = part.substr(0, bracket);
    }
    if (part.empty())
      throw ConfigError(mark, key_path, "empty key in " + std::string(unset ? "--unset" : "--set") + " path");
    const std::string parent_path = path;
    path += (path.empty() ? "" : ".") + part;
    const bool last = dot == std::string::npos;
    if (!cur->is_map() && !cur->is_null())
      throw ConfigError(mark, path,
                        unset ? "no key to remove inside a non-map value" : "cannot set a key inside a non-map value");
    Node* child = cur->find(part);
    if (!child && unset) {
      std::vector<std::string> keys;
      for (const auto& entry : cur->entries()) keys.push_back(entry.first);
      throw ConfigError(mark, path,
                        "there is no key '" + part + "' " +
                            (parent_path.empty() ? "at the top level" : "in " + parent_path) + " to remove" +
                            did_you_mean(part, keys));
    }
    if (!child) {
      // Caffe's V1 `layers` (a V1 net is upgraded before the overrides apply), or the habit.
      if (index >= 0 && part == "layers" && cur->find("layer"))
        throw ConfigError(mark, path,
                          "the net's list of layers is 'layer' (a V1 net's 'layers' is read into it, as crema "
                          "convert writes it): write " +
                              path.substr(0, path.size() - 1) + "[" + std::to_string(index) + "]");
      if (index >= 0) throw ConfigError(mark, path, "no list '" + part + "' to index");
      child = &cur->set(part, last ? Node() : Node::map(mark, path));
      child->set_key_mark(mark);
    }
    if (index >= 0) {
      if (!child->is_seq() || index >= static_cast<int>(child->items().size()))
        throw ConfigError(mark, path, "index [" + std::to_string(index) + "] is out of range");
      if (last && unset) {
        // The list's later items move up one (and their paths with them), as for a later --set.
        auto& items = child->items();
        items.erase(items.begin() + index);
        child->set_path(path);
        return;
      }
      child = &child->items()[static_cast<size_t>(index)];
      path += "[" + std::to_string(index) + "]";
    }
    if (last) {
      if (unset) {
        cur->erase(part);
        return;
      }
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

namespace {
// The solver `loaded` from `path` with its net resolved and the overrides applied.
// `--set net=other.prototxt` picks another net file, so it applies before the net is
// loaded; every other override applies to the loaded job.
std::shared_ptr<Node> solver_with_overrides(Node loaded, const std::string& path,
                                            const std::vector<std::string>& overrides) {
  std::vector<std::string> rest;
  for (const auto& o : overrides) {
    if (o.rfind("net=", 0) == 0)
      apply_override(loaded, o);
    else
      rest.push_back(o);
  }
  auto root = load_solver(std::move(loaded), path);
  for (const auto& o : rest) apply_override(*root, o);
  return root;
}
}  // namespace

std::shared_ptr<Node> load_solver_config(const std::string& path, const std::vector<std::string>& overrides) {
  Node loaded = load_config_file(path);
  if (!loaded.is_map()) loaded.fail("a solver file must be a map of solver keys (base_lr, max_iter, net, ...)");
  if (loaded.find("layer") || loaded.find("layers"))
    loaded.fail("this is a net (it has a layer list), not a solver: give the solver file, which names the net (net: " +
                path + ") beside the training keys (base_lr, max_iter, ...)");
  return solver_with_overrides(std::move(loaded), path, overrides);
}

std::shared_ptr<Node> load_net_config(const std::string& path, std::shared_ptr<Node>* solver_root,
                                      const std::vector<std::string>& overrides) {
  Node loaded = load_config_file(path);
  if (!loaded.is_map()) loaded.fail("a net file must be a map with 'name' and 'layer'");
  if (is_solver_message(loaded)) {
    auto solver = solver_with_overrides(std::move(loaded), path, overrides);
    const Node* net = solver->find("net");
    if (!net) solver->fail("this solver names no net ('net:'), so it has no net to use");
    auto out = std::make_shared<Node>(*net);
    if (solver_root) *solver_root = std::move(solver);
    return out;
  }
  auto root = std::make_shared<Node>(std::move(loaded));
  log_upgrade(path, upgrade_net(*root));
  for (const auto& o : overrides) {
    // `net.layer[0]…`, as a solver's overrides are written: a net file's keys have no `net.`.
    const bool unset = o.rfind('~', 0) == 0;
    if (o.rfind(unset ? "~net." : "net.", 0) == 0 && !root->find("net")) {
      const std::string option = unset ? "--unset " : "--set ";
      throw ConfigError(Mark{}, option.substr(0, option.size() - 1),
                        "'" + o.substr(unset ? 1 : 0) + "': " + path + " is a net, not a solver, so its keys are " +
                            (unset ? "named" : "set") + " without 'net.': " + option + o.substr(unset ? 5 : 4));
    }
    apply_override(*root, o);
  }
  return root;
}

}  // namespace crema::io
