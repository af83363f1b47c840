// Loading a training job: the solver file, with its net either inline or named by
// a path (relative to the solver file, else to the working directory as in Caffe),
// plus --set overrides from the command line. Solver and net files may be YAML or
// Caffe's prototxt; older Caffe formats are upgraded on read (io/caffe_upgrade.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.hpp"

namespace crema::io {

enum class ConfigFormat { Yaml, Prototxt };
// By extension: .prototxt, .pt, .pbtxt, .prototext → Prototxt; .yaml, .yml → Yaml;
// anything else → nullopt.
std::optional<ConfigFormat> config_format_for(const std::string& path);
// A YAML or prototxt file, told apart by its extension or else by its content
// (prototxt's `key {` blocks; otherwise YAML, then prototxt if YAML cannot read it).
Node load_config_file(const std::string& path);

// Caffe's separate train and test nets (train_net, test_net, …), which crema does not
// take, refused at their key with what to write instead.
void reject_split_nets(const Node& solver);
// The file a solver's `net: <written>` (or `weights:`) names: `written` relative to the
// solver's folder, else as written (from the working directory, as Caffe reads it);
// nothing when neither exists. Also says, in `looked`, where it looked.
std::optional<std::string> find_beside_solver(const std::string& written, const std::string& solver_path,
                                              std::string* looked = nullptr);
// A net file, upgraded from older Caffe formats (the upgrade logged).
Node load_net_file(const std::string& path);

// The solver map with `net` resolved into an inline map.
std::shared_ptr<Node> load_solver_config(const std::string& path, const std::vector<std::string>& overrides = {});
// A net file; a solver file is accepted too and yields its net.
// `solver_root`, when given, receives the whole solver if `path` is one (else stays null).
// The overrides apply to the file's root: the solver's keys (and `net.…`) for a solver
// file, as for training, else the net's.
std::shared_ptr<Node> load_net_config(const std::string& path, std::shared_ptr<Node>* solver_root = nullptr,
                                      const std::vector<std::string>& overrides = {});
// Applies one "key.path=value" override (e.g. "max_iter=100",
// "net.layer[0].data_param.batch_size=32"; the value is parsed as YAML), or removes the
// key (or list item) of a "~key.path" one (--unset key.path): the overrides of a command
// line, --set and --unset, in the order given.
void apply_override(Node& root, const std::string& assignment);

}  // namespace crema::io
