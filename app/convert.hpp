// `crema convert IN -o OUT`: rewrites a net or a solver between Caffe's prototxt and
// crema's YAML (the output format follows OUT's extension), writing the current
// format: older Caffe files (V1 layers, input fields, ...) come out upgraded.
// `crema convert DEPLOY --weights W -o OUT.onnx` exports a deploy net with its weights
// as an ONNX model (io/onnx.hpp). `crema convert NET -o NET.dot` draws the net as a
// Graphviz graph (io/dot.hpp), as Caffe's draw_net.py.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace crema::app {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::vector<std::string> weights;  // for an ONNX output
  std::vector<std::string> overrides;  // --set, applied to the net for an ONNX or a graph output
  std::string rankdir = "LR";          // for a graph output (.dot, .gv): Graphviz's direction, draw_net's default
  bool rankdir_given = false;
  std::vector<std::string> stages;  // for an ONNX output: the exported (TEST) net's state, as classify's
  std::optional<int> level;
};
int convert(const ConvertOptions& opt);

}  // namespace crema::app
