// Reading a blob value as an index (Embed's table rows, BatchReindex's batch items).
// Caffe casts the float to int and checks it in debug builds only, so a bad value
// reads out of bounds; crema stops with a message naming the layer instead.
#pragma once

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <limits>
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

// Sizes `scratch` for the GPU's add_rows_by_index (layers/cuda/misc_kernels.hpp) over
// `m` indices into `rows` rows: 2 rows + 1 + m ints, held in a float blob's memory.
inline void reshape_index_scratch(const Layer& layer, Blob& scratch, int m, int rows) {
  static_assert(sizeof(int) == sizeof(float));
  const long long ints = 2LL * rows + 1 + m;
  if (ints > std::numeric_limits<int>::max())
    layer.spec().fail("the GPU gradient's index scratch (" + std::to_string(ints) + " entries: twice " +
                      std::to_string(rows) + " rows plus " + std::to_string(m) +
                      " indices) exceeds 2^31; use fewer rows or a smaller batch");
  scratch.reshape({static_cast<int>(ints)});
}

}  // namespace crema
