#include "layers/epoch_sampler.hpp"

#include <numeric>
#include <sstream>

#include "engine/error.hpp"

namespace crema {

void EpochSampler::init(int num_samples, bool shuffle, uint64_t seed) {
  if (num_samples <= 0) throw Error("a data source with no samples cannot be read");
  rng_.seed(seed);
  shuffle_ = shuffle;
  order_.resize(static_cast<size_t>(num_samples));
  epoch_ = 0;
  start_epoch();
}

void EpochSampler::start_epoch() {
  epoch_rng_state_ = rng_.state();
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_)  // Fisher-Yates with the layer's own stream
    for (size_t i = order_.size() - 1; i > 0; --i) std::swap(order_[i], order_[rng_.below(static_cast<uint32_t>(i + 1))]);
  pos_ = 0;
}

int EpochSampler::next() {
  if (pos_ >= static_cast<int>(order_.size())) {
    ++epoch_;
    start_epoch();
  }
  return order_[static_cast<size_t>(pos_++)];
}

std::string EpochSampler::save() const {
  std::ostringstream os;
  os << order_.size() << '\n' << epoch_ << '\n' << pos_ << '\n' << epoch_rng_state_;
  return os.str();
}

void EpochSampler::restore(const std::string& state) {
  std::istringstream is(state);
  size_t n = 0;
  int epoch = 0, pos = 0;
  is >> n >> epoch >> pos;
  is.ignore(1);
  std::string rng_state;
  std::getline(is, rng_state, '\0');
  if (is.fail() || epoch < 0 || pos < 0 || pos > static_cast<int>(n))
    throw Error("the snapshot's data reader state is corrupt (position " + std::to_string(pos) + " of " +
                std::to_string(n) + ")");
  if (n != order_.size())
    throw Error("the snapshot's data reader state is for a source of " + std::to_string(n) + " samples, but this one has " +
                std::to_string(order_.size()) + "; was the data changed?");
  rng_.set_state(rng_state);
  start_epoch();  // regenerates the epoch's order from the saved stream
  epoch_ = epoch;
  pos_ = pos;
}

}  // namespace crema
