// A seedable random stream whose whole state can be saved in a checkpoint and
// restored, so that a resumed run draws exactly the numbers an uninterrupted one
// would. Distributions are written out here (not std::*_distribution, whose
// algorithms differ between standard libraries) so the streams are portable.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace crema {

class Rng {
 public:
  explicit Rng(uint64_t seed = 1701) : engine_(static_cast<std::mt19937::result_type>(seed)) {}
  void seed(uint64_t seed) { engine_.seed(static_cast<std::mt19937::result_type>(seed)); }

  uint32_t next_u32() { return static_cast<uint32_t>(engine_()); }
  // Two draws, the first in the high half. Drawn in named steps: the operands of `|`
  // are unsequenced, so `a() << 32 | a()` may draw in either order per compiler.
  uint64_t next_u64() {
    const uint64_t high = next_u32();
    return high << 32 | next_u32();
  }
  double uniform01();                          // [0, 1)
  float uniform(float a, float b);             // [a, b)
  float gaussian(float mean, float stddev);    // Box-Muller
  bool bernoulli(float p) { return uniform01() < p; }
  uint32_t below(uint32_t n);                  // [0, n), unbiased

  std::string state() const;
  void set_state(const std::string& s);  // throws Error on a malformed state

 private:
  std::mt19937 engine_;
  bool have_spare_ = false;
  double spare_ = 0;
};

}  // namespace crema
