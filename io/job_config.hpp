// Loading a training job: the solver file, with its net either inline or named by
// a path relative to the solver file, plus --set overrides from the command line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.hpp"

namespace crema::io {

// The solver map with `net` resolved into an inline map.
std::shared_ptr<Node> load_solver_config(const std::string& path, const std::vector<std::string>& overrides = {});
// A net file; a solver file is accepted too and yields its net.
std::shared_ptr<Node> load_net_config(const std::string& path);
// Applies one "key.path=value" override (e.g. "max_iter=100",
// "net.layer[0].data_param.batch_size=32"); the value is parsed as YAML.
void apply_override(Node& root, const std::string& assignment);

}  // namespace crema::io
