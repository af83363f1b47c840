// YAML → crema::Node, keeping file:line:col for every value and key.
#pragma once

#include <string>

#include "engine/config.hpp"

namespace crema::io {

// Throws ConfigError for syntax errors, with the position. Files are read by
// io::load_config_file (io/job_config.hpp), which also reads prototxt.
Node parse_yaml(const std::string& text, const std::string& source_name = "<string>");
// Parses one scalar or flow value given on the command line (--set key=value); a
// syntax error is reported at `where` (the --set argument) for `key_path`.
Node parse_yaml_value(const std::string& text, const Mark& where, const std::string& key_path);
// Writes a Node back as YAML (the resolved config in snapshots, `crema convert`):
// block style at the top, flow style for what fits in 100 columns. Scalars keep
// their text, so numbers keep their spelling.
std::string to_yaml(const Node& node);

}  // namespace crema::io
