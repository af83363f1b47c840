// The order in which a data layer visits its samples: sequential, or a fresh
// permutation every epoch drawn from the layer's own seeded stream. Its state is
// the stream as it was at the start of the current epoch plus the position, so a
// resumed run continues with exactly the next sample.
//
// Grouped mode serves sources read in blocks (HDF5 files larger than memory): the
// samples form groups of consecutive indices, and a shuffled epoch visits the
// groups in a fresh order and the samples of each group in a fresh order of their
// own. Consecutive samples therefore stay in one group (one block read serves
// them all) while every sample is still visited exactly once per epoch. Only the
// current group's order is held, so memory follows the group size, not the data.
// A window of W > 1 mixes W groups at a time: the samples of the next W groups of
// the epoch's order are visited in one fresh order (a block-sorted source, such as a
// class-sorted HDF5 file, is then mixed across W random blocks, not within one).
#pragma once

#include <string>
#include <vector>

#include "engine/rng.hpp"

namespace crema {

class EpochSampler {
 public:
  void init(int num_samples, bool shuffle, uint64_t seed);
  // Group g is the group_sizes[g] indices after those of groups 0..g-1. With one
  // group this is init(): the same orders and the same saved state.
  void init_groups(const std::vector<int>& group_sizes, bool shuffle, uint64_t seed, int window = 1);
  int next();  // index of the next sample; starts a new epoch when one ends
  int epoch() const { return epoch_; }
  int size() const { return group_start_.empty() ? 0 : group_start_.back(); }
  bool shuffles() const { return shuffle_; }
  std::string save() const;
  // Throws Error on a mismatched state. The saved window is taken for the rest of the saved
  // epoch (a state saved before windows existed has 1), so a resume goes on in the order
  // the run had; the epochs after it use the sampler's own window.
  void restore(const std::string& state);

 private:
  int num_groups() const { return static_cast<int>(group_start_.size()) - 1; }
  void start_epoch(int window);  // with `window` groups mixed together this epoch
  void enter_group(int k);  // draws the order within the k-th group (and the window after it) of this epoch

  Rng rng_;
  std::string epoch_rng_state_;
  std::vector<int> group_start_;  // first index of each group, then the total
  std::vector<int> group_order_;  // this epoch's order of the groups
  std::vector<int> in_group_;     // the current group's indices, in this epoch's order
  int group_ = 0;                 // position of the current group in group_order_
  int in_pos_ = 0;                // position in in_group_
  bool shuffle_ = false;
  int window_ = 1;        // groups mixed together, from init_groups
  int epoch_window_ = 1;  // this epoch's: window_, or a restored state's until its epoch ends
  int pos_ = 0;  // samples handed out in this epoch
  int epoch_ = 0;
};

}  // namespace crema
