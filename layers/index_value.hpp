// Reading a blob value as an index (Embed's table rows, BatchReindex's batch items).
// Caffe casts the float to int and checks it in debug builds only, so a bad value
// reads out of bounds; crema stops with a message naming the layer instead.
#pragma once

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <string>

#include "engine/error.hpp"
#include "engine/layer.hpp"

namespace crema {

// `value` (element `position` of the bottom) as an integer in [0, limit); anything
// else — negative, too large, fractional, NaN — throws an Error that ends in `advice`.
inline int read_index(const Layer& layer, float value, int limit, long position, const std::string& advice) {
  if (!(value >= 0.f && value < static_cast<float>(limit)) || std::floor(value) != value)
    throw Error(std::string(layer.type()) + " layer '" + layer.name() + "': value " + fmt::format("{}", value) +
                " at position " + std::to_string(position) + " is not an index in [0, " + std::to_string(limit) +
                "); " + advice);
  return static_cast<int>(value);
}

}  // namespace crema
