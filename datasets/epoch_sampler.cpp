#include "datasets/epoch_sampler.hpp"

#include <algorithm>
#include <climits>
#include <numeric>
#include <sstream>

#include "engine/error.hpp"

namespace crema {

namespace {

// Fisher-Yates with the sampler's own stream.
void shuffle_in_place(std::vector<int>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(static_cast<uint32_t>(i))]);
}

std::string sizes_string(const std::vector<int>& sizes) {
  std::string s;
  for (size_t i = 0; i < sizes.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return sizes.size() > 8 ? s + ", …" : s;
}

}  // namespace

void EpochSampler::init(int num_samples, bool shuffle, uint64_t seed) {
  if (num_samples <= 0) throw Error("a data source with no samples cannot be read");
  init_groups({num_samples}, shuffle, seed);
}

void EpochSampler::init_groups(const std::vector<int>& group_sizes, bool shuffle, uint64_t seed, int window) {
  if (group_sizes.empty()) throw Error("a data source with no samples cannot be read");
  group_start_.assign(1, 0);
  long long total = 0;
  for (int size : group_sizes) {
    if (size <= 0) throw Error("a group of samples is empty (" + std::to_string(size) + " samples)");
    total += size;
    if (total > INT_MAX) throw Error("a data source of more than " + std::to_string(INT_MAX) + " samples is not supported");
    group_start_.push_back(static_cast<int>(total));
  }
  rng_.seed(seed);
  shuffle_ = shuffle;
  window_ = std::max(window, 1);
  epoch_ = 0;
  start_epoch(window_);
}

void EpochSampler::start_epoch(int window) {
  epoch_window_ = window;
  epoch_rng_state_ = rng_.state();
  group_order_.resize(static_cast<size_t>(num_groups()));
  std::iota(group_order_.begin(), group_order_.end(), 0);
  if (shuffle_) shuffle_in_place(group_order_, rng_);
  pos_ = 0;
  enter_group(0);
}

void EpochSampler::enter_group(int k) {
  group_ = k;
  in_group_.clear();
  for (int w = k; w < std::min(k + epoch_window_, num_groups()); ++w) {
    const auto g = static_cast<size_t>(group_order_[static_cast<size_t>(w)]);
    for (int i = group_start_[g]; i < group_start_[g + 1]; ++i) in_group_.push_back(i);
  }
  if (shuffle_) shuffle_in_place(in_group_, rng_);
  in_pos_ = 0;
}

int EpochSampler::next() {
  if (in_pos_ >= static_cast<int>(in_group_.size())) {
    if (group_ + epoch_window_ < num_groups()) {
      enter_group(group_ + epoch_window_);
    } else {
      ++epoch_;
      start_epoch(window_);
    }
  }
  ++pos_;
  return in_group_[static_cast<size_t>(in_pos_++)];
}

// One group: "N\nepoch\npos\nrng" (the format before groups existed). More:
// "groups G s_1 … s_G\n" first, so that a restore can check the layout.
std::string EpochSampler::save() const {
  std::ostringstream os;
  if (num_groups() > 1) {
    os << "groups " << num_groups();
    for (int g = 0; g < num_groups(); ++g) os << ' ' << group_start_[static_cast<size_t>(g) + 1] - group_start_[static_cast<size_t>(g)];
    os << '\n';
    if (epoch_window_ > 1) os << "window " << epoch_window_ << '\n';
  }
  os << size() << '\n' << epoch_ << '\n' << pos_ << '\n' << epoch_rng_state_;
  return os.str();
}

void EpochSampler::restore(const std::string& state) {
  std::istringstream is(state);
  std::vector<int> saved_groups;
  if (state.rfind("groups ", 0) == 0) {
    std::string word;
    size_t count = 0;
    is >> word >> count;
    if (is.fail() || count > state.size()) throw Error("the snapshot's data reader state is corrupt (group layout)");
    saved_groups.resize(count);
    for (int& s : saved_groups) is >> s;
    is.ignore(1);
  }
  int window = 1;
  if (is.peek() == 'w') {
    std::string word;
    is >> word >> window;
    if (is.fail() || word != "window" || window < 1)
      throw Error("the snapshot's data reader state is corrupt (window)");
  }
  size_t n = 0;
  int epoch = 0, pos = 0;
  is >> n >> epoch >> pos;
  is.ignore(1);
  std::string rng_state;
  std::getline(is, rng_state, '\0');
  if (is.fail() || epoch < 0 || pos < 0 || pos > static_cast<int>(n))
    throw Error("the snapshot's data reader state is corrupt (position " + std::to_string(pos) + " of " +
                std::to_string(n) + ")");
  if (n != static_cast<size_t>(size()))
    throw Error("the snapshot's data reader state is for a source of " + std::to_string(n) +
                " samples, but this one has " + std::to_string(size()) +
                "; was the data changed? Resume with the data the run started with, or start a new run from the "
                "snapshot's weights (--weights with its .caffemodel.h5)");
  std::vector<int> groups;
  for (int g = 0; g < num_groups(); ++g) groups.push_back(group_start_[static_cast<size_t>(g) + 1] - group_start_[static_cast<size_t>(g)]);
  if (saved_groups.empty()) saved_groups = {static_cast<int>(n)};
  if (saved_groups != groups)
    throw Error("the snapshot's data reader state reads the " + std::to_string(n) + " samples in " +
                std::to_string(saved_groups.size()) + " block(s) of " + sizes_string(saved_groups) + ", but this source has " +
                std::to_string(groups.size()) + " block(s) of " + sizes_string(groups) +
                "; was the data or the block size changed?");
  rng_.set_state(rng_state);
  start_epoch(window);  // regenerates the epoch's order from the saved stream
  epoch_ = epoch;
  // Replay the groups before `pos`, drawing their orders as the run did.
  int left = pos;
  while (left > static_cast<int>(in_group_.size())) {
    left -= static_cast<int>(in_group_.size());
    enter_group(group_ + epoch_window_);
  }
  in_pos_ = left;
  pos_ = pos;
}

}  // namespace crema
