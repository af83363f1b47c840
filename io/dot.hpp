// A net as a Graphviz graph, as Caffe's draw_net.py draws one: a box per layer (its
// name, type and the plain values of its parameter block), an octagon per blob, and
// arrows from bottoms to layers to tops. Render with `dot -Tpng net.dot -o net.png`.
// Every layer is drawn, whatever its phase; one with include or exclude rules says them
// ("only TRAIN", "only stage deploy", "except TEST").
// A top that a layer computes in place becomes a new blob node, so the graph keeps
// flowing one way (conv1 -> relu1 -> conv1).
#pragma once

#include <string>

#include "engine/net.hpp"

namespace crema::io {

// `rankdir` is Graphviz's: LR (left to right, draw_net's default), RL, TB or BT.
std::string to_dot(const NetSpec& spec, const std::string& rankdir = "LR");

}  // namespace crema::io
