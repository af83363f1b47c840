// The order in which a data layer visits its samples: sequential, or a fresh
// permutation every epoch drawn from the layer's own seeded stream. Its state is
// the stream as it was at the start of the current epoch plus the position, so a
// resumed run continues with exactly the next sample.
#pragma once

#include <string>
#include <vector>

#include "engine/rng.hpp"

namespace crema {

class EpochSampler {
 public:
  void init(int num_samples, bool shuffle, uint64_t seed);
  int next();  // index of the next sample; starts a new epoch when one ends
  int epoch() const { return epoch_; }
  std::string save() const;
  void restore(const std::string& state);  // throws Error on a mismatched state

 private:
  void start_epoch();
  Rng rng_;
  std::string epoch_rng_state_;
  std::vector<int> order_;
  bool shuffle_ = false;
  int pos_ = 0;
  int epoch_ = 0;
};

}  // namespace crema
