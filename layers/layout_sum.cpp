#include "layers/layout_sum.hpp"

#include "engine/math.hpp"

namespace crema {

bool sum_in_layout(const std::vector<SyncedMemory*>& in, const std::vector<float>& coeff, SyncedMemory& out,
                   LayoutOutput& buffer) {
  const LayoutCopy* first = in.empty() ? nullptr : in[0]->layout();
  if (!first) return false;
  for (const SyncedMemory* m : in)
    if (m == &out || !m->layout() || !m->layout()->same_layout(*first)) return false;
  LayoutCopy& y = buffer.prepare(*first, out);
  std::vector<const float*> x;  // each (float_count), the layout's floats
  for (SyncedMemory* m : in) x.push_back(m->layout()->floats());
  cpu_weighted_sum(static_cast<long>(y.float_count()), x, coeff, y.floats());
  buffer.commit(out);
  return true;
}

}  // namespace crema
