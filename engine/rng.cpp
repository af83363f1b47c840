#include "engine/rng.hpp"

#include <cmath>
#include <sstream>

#include "engine/error.hpp"

namespace crema {

double Rng::uniform01() {
  // 53 random bits from two draws.
  const uint64_t a = next_u32() >> 5, b = next_u32() >> 6;
  return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
}

float Rng::uniform(float a, float b) {
  float v = a + static_cast<float>(uniform01() * (static_cast<double>(b) - a));
  return v < b ? v : a;  // rounding to float may reach b
}

float Rng::gaussian(float mean, float stddev) {
  if (have_spare_) {
    have_spare_ = false;
    return mean + stddev * static_cast<float>(spare_);
  }
  double u1 = 0;
  while (u1 <= 0) u1 = uniform01();
  const double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  have_spare_ = true;
  return mean + stddev * static_cast<float>(r * std::cos(2.0 * M_PI * u2));
}

uint32_t Rng::below(uint32_t n) {
  if (n <= 1) return 0;
  const uint32_t limit = UINT32_MAX - UINT32_MAX % n;
  uint32_t x;
  do x = next_u32();
  while (x >= limit);
  return x % n;
}

std::string Rng::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << (have_spare_ ? 1 : 0) << ' ';
  os.precision(17);
  os << spare_;
  return os.str();
}

void Rng::set_state(const std::string& s) {
  std::istringstream is(s);
  int spare_flag = 0;
  is >> engine_ >> spare_flag >> spare_;
  if (is.fail()) throw Error("corrupt random-number state in checkpoint");
  have_spare_ = spare_flag != 0;
}

}  // namespace crema
