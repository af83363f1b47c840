#include "io/dot.hpp"

#include <algorithm>
#include <map>
#include <vector>

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

// A rule as words: "TRAIN, stage deploy, level >= 2".
std::string rule_words(const NetStateRule& rule) {
  std::vector<std::string> parts;
  if (rule.phase) parts.emplace_back(phase_name(*rule.phase));
  for (const auto& s : rule.stage) parts.push_back("stage " + s);
  for (const auto& s : rule.not_stage) parts.push_back("not stage " + s);
  if (rule.min_level) parts.push_back("level >= " + std::to_string(*rule.min_level));
  if (rule.max_level) parts.push_back("level <= " + std::to_string(*rule.max_level));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "always" : out;
}

// "\n(only TRAIN)", "\n(only TEST or stage deploy)", "\n(except TEST)": the layer's
// include or exclude rules; "" when it has none.
std::string rules_note(const LayerSpec& layer) {
  const bool include = !layer.include.empty();
  std::string out;
  for (const auto& rule : include ? layer.include : layer.exclude)
    out += (out.empty() ? "" : " or ") + rule_words(rule);
  return out.empty() ? "" : std::string("\n(") + (include ? "only " : "except ") + out + ")";
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
           " [label=" + quoted(layer.name + "\n(" + layer.type + ")" + parameter_lines(layer) + rules_note(layer)) +
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
