#include "io/dot.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace crema::io {

namespace {

// A DOT string's contents: quotes and backslashes escaped, line breaks as \n.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// draw_net.py's colours.
const char* layer_colour(const std::string& type) {
  if (type == "Convolution" || type == "Deconvolution") return "#FF5050";
  if (type == "Pooling") return "#FF9900";
  if (type == "InnerProduct") return "#CC33FF";
  return "#6495ED";
}

// The plain values (numbers, words and lists of them) of the layer's own parameter
// block, one per line, e.g. "num_output: 20" and "kernel_size: 5"; fillers and other
// nested blocks are left out, as draw_net.py leaves them.
std::string parameter_lines(const LayerSpec& layer) {
  if (!layer.config || !layer.config->is_map()) return "";
  std::string out;
  for (const auto& [key, block] : layer.config->entries()) {
    if (!key.ends_with("_param") || key == "transform_param" || !block.is_map()) continue;
    for (const auto& [name, value] : block.entries()) {
      std::string text;
      if (value.is_scalar()) {
        text = value.str();
      } else if (value.is_seq()) {
        for (const auto& item : value.items()) {
          if (!item.is_scalar()) {
            text.clear();
            break;
          }
          text += (text.empty() ? "[" : ", ") + item.str();
        }
        if (!text.empty()) text += "]";
      }
      if (!text.empty()) out += "\n" + name + ": " + text;
    }
  }
  return out;
}

// "TRAIN only" for a layer that only some phases include, else "".
std::string phase_note(const LayerSpec& layer) {
  std::set<std::string> phases;
  for (const auto& rule : layer.include) phases.insert(rule.phase ? phase_name(*rule.phase) : "any");
  if (phases.size() == 1 && !phases.count("any")) return "\n(" + *phases.begin() + " only)";
  for (const auto& rule : layer.exclude)
    if (rule.phase && rule.min_level == std::nullopt && rule.max_level == std::nullopt && rule.stage.empty() &&
        rule.not_stage.empty())
      return std::string("\n(") + (*rule.phase == Phase::TRAIN ? "TEST" : "TRAIN") + " only)";
  return "";
}

}  // namespace

std::string to_dot(const NetSpec& spec, const std::string& rankdir) {
  std::string out = "digraph " + quoted(spec.name.empty() ? "net" : spec.name) + " {\n";
  out += "  rankdir=" + rankdir + ";\n";
  out += "  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::map<std::string, std::string> current;  // blob name -> its latest node
  int blob_nodes = 0;
  const auto new_blob = [&](const std::string& blob) {
    const std::string id = "blob" + std::to_string(blob_nodes++);
    out += "  " + id + " [label=" + quoted(blob) + ", shape=octagon, style=filled, fillcolor=\"#E0E0E0\"];\n";
    current[blob] = id;
    return id;
  };
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& layer = spec.layers[i];
    const std::string id = "layer" + std::to_string(i);
    out += "  " + id +
           " [label=" + quoted(layer.name + "\n(" + layer.type + ")" + parameter_lines(layer) + phase_note(layer)) +
           ", shape=box, style=filled, fillcolor=" + quoted(layer_colour(layer.type)) + "];\n";
    for (const auto& bottom : layer.bottom) {
      const auto it = current.find(bottom);
      out += "  " + (it != current.end() ? it->second : new_blob(bottom)) + " -> " + id + ";\n";
    }
    for (const auto& top : layer.top) {
      // In place (the top is also a bottom): a new node for the new values. A top made
      // again by another layer (TRAIN's and TEST's data layers) is the same blob.
      const bool in_place = std::find(layer.bottom.begin(), layer.bottom.end(), top) != layer.bottom.end();
      const auto it = current.find(top);
      out += "  " + id + " -> " + (it != current.end() && !in_place ? it->second : new_blob(top)) + ";\n";
    }
  }
  return out + "}\n";
}

}  // namespace crema::io
