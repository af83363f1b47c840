// Reading a blob value as an index (Embed's table rows, BatchReindex's batch items).
// Caffe casts the float to int and checks it in debug builds only, so a bad value
// reads out of bounds; crema stops with a message naming the layer instead.
#pragma once

#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/layer.hpp"

namespace crema {

// `value` (element `position` of bottom `bottom`, the blob `held_in`) as an integer in
// [0, limit); anything else — negative, too large, fractional, NaN — throws a BadLabel
// (the net adds the data layer's sample it came from) saying what is wrong with it and where,
// as coordinates of the blob ((t, n) of a sequence's); `too_large` is the advice for a value
// past the last index.
inline int read_index(const Layer& layer, float value, int limit, long position, const Blob& held_in, int bottom,
                      const std::string& too_large) {
  if (value >= 0.f && value < static_cast<float>(limit) && std::floor(value) == value) return static_cast<int>(value);
  std::string at = std::to_string(position);
  if (held_in.num_axes() > 1 && position < held_in.count()) {
    std::vector<long> coords(static_cast<size_t>(held_in.num_axes()));
    long rest = position;
    for (int a = held_in.num_axes() - 1; a >= 0; --a) {
      coords[static_cast<size_t>(a)] = rest % held_in.shape(a);
      rest /= held_in.shape(a);
    }
    at = "(" + fmt::format("{}", fmt::join(coords, ", ")) + ")";
  }
  const std::string range = "[0, " + std::to_string(limit) + ")";
  const std::string why = std::isnan(value) || std::isinf(value) ? "is not a finite number; check the input data"
                          : value < 0.f                          ? "is negative; indices count from 0, in " + range
                          : std::floor(value) != value
                              ? "is not a whole number; indices are whole numbers in " + range +
                                    " (data scaled or mean-subtracted on the way in?)"
                              : "is past the last index " + std::to_string(limit - 1) + "; " + too_large;
  throw BadLabel(std::string(layer.type()) + " layer '" + layer.name() + "': value " + fmt::format("{}", value) +
                     " at position " + at + " of " + layer.spec().bottom_label(static_cast<size_t>(bottom)) +
                     (held_in.num_axes() > 1 ? " of shape " + held_in.shape_string() : std::string()) + " " + why,
                 value, bottom, "value");
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
