// YAML → crema::Node, keeping file:line:col for every value and key.
#pragma once

#include <string>

#include "engine/config.hpp"

namespace crema::io {

// Throws ConfigError for syntax errors (with the position) and Error when the
// file cannot be read.
Node load_yaml_file(const std::string& path);
Node parse_yaml(const std::string& text, const std::string& source_name = "<string>");
// Parses one scalar or flow value given on the command line (--set key=value).
Node parse_yaml_value(const std::string& text);
// Writes a Node back as YAML (used to store the resolved config in snapshots).
std::string to_yaml(const Node& node);

}  // namespace crema::io
