// Weighted sums of activations that oneDNN layers left in one layout (Eltwise SUM's
// output, Split's gradient), computed in that layout so the next oneDNN layer takes
// the result without a conversion.
#pragma once

#include <vector>

#include "engine/synced_memory.hpp"

namespace crema {

// out = Σ coeff[k] · in[k], over every float of the buffers (padding included: zeros
// stay zeros), into `buffer`'s layout copy, which becomes out's contents. Only when
// every in[k] holds a layout copy, all alike, and none is `out`; else it does nothing
// and returns false, and the caller runs its plain loop.
bool sum_in_layout(const std::vector<SyncedMemory*>& in, const std::vector<float>& coeff, SyncedMemory& out,
                   LayoutOutput& buffer);

}  // namespace crema
