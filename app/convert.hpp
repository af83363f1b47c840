// `crema convert IN -o OUT`: rewrites a net or a solver between Caffe's prototxt and
// crema's YAML (the output format follows OUT's extension), writing the current
// format: older Caffe files (V1 layers, input fields, ...) come out upgraded.
#pragma once

#include <string>

namespace crema::app {

struct ConvertOptions {
  std::string input;
  std::string output;
};
int convert(const ConvertOptions& opt);

}  // namespace crema::app
