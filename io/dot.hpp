// A net as a Graphviz graph, as Caffe's draw_net.py draws one: a box per layer (its
// name, type and the plain values of its parameter block), an octagon per blob, and
// arrows from bottoms to layers to tops. Render with `dot -Tpng net.dot -o net.png`.
// Every layer is drawn, whatever its phase; one that only some phases include says so.
// A top that a layer computes in place becomes a new blob node, so the graph keeps
// flowing one way (conv1 -> relu1 -> conv1).
#pragma once

#include <string>

#include "engine/net.hpp"

namespace crema::io {

// `rankdir` is Graphviz's: TB (top to bottom, the default here), BT, LR or RL.
std::string to_dot(const NetSpec& spec, const std::string& rankdir = "TB");

}  // namespace crema::io
