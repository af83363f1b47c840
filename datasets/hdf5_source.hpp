// The rows of the HDF5 files a list names, read a block at a time so that files
// larger than memory can be trained on.
//
// The list (Caffe's HDF5Data `source`) names one .h5 file per line; '#' comments
// and blank lines are skipped; a relative path is looked up from the working
// directory, as Caffe does, else next to the list. Each file holds one numeric
// dataset per top, named after it, whose first axis indexes rows (samples).
//
// At setup only metadata is read (dims and element type). The first usable file
// sets each dataset's row shape; a later file with rows of another shape, or whose
// datasets have different row counts, is skipped with one warning (skip_bad) or
// is an error. The rows are cut into blocks: consecutive rows of one file, about
// block_bytes of floats over all datasets; a block is read with one hyperslab per
// dataset. A few recently used blocks stay cached, so memory is bounded by
// (cached_blocks + reader threads) x block_bytes whatever the data size.
// EpochSampler::init_groups(block_sizes()) orders the rows so reads stay in a block.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace crema {

inline constexpr size_t kHDF5BlockBytes = size_t{16} << 20;
// Blocks whose rows a shuffled epoch mixes together (EpochSampler's window): 64 MiB of rows.
inline constexpr int kHDF5MixedBlocks = 4;

struct HDF5SourceOptions {
  std::vector<std::string> datasets;     // one per top, named after it
  bool skip_bad = true;                  // on_bad_sample: skip a file that does not fit, else fail
  bool paired = false;                   // the net's other data layers pair up with this one's rows
  size_t block_bytes = kHDF5BlockBytes;  // a block's floats over all datasets, at most (one row at least)
  int cached_blocks = 4;                 // blocks kept in memory (the layer: its shuffle window + 2 per thread + 1)
};

class HDF5Source {
 public:
  // Reads the list and every file's metadata; throws Error naming the list line.
  HDF5Source(const std::string& list_file, HDF5SourceOptions options);

  int size() const { return blocks_.empty() ? 0 : blocks_.back().start + blocks_.back().count; }
  int num_files() const { return static_cast<int>(files_.size()); }  // usable ones
  int skipped_files() const { return skipped_files_; }
  std::vector<std::string> file_paths() const;  // the usable files, as the list names them
  const std::vector<int>& row_shape(size_t dataset) const { return row_shape_[dataset]; }
  size_t row_size(size_t dataset) const { return row_size_[dataset]; }  // floats in one row
  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  std::vector<int> block_sizes() const;  // rows of each block, in order: the sampler's groups

  // Copies row `index` of every dataset to outs[d] (row_size(d) floats each). Safe
  // to call from several threads. Throws BadSample when the row cannot be read, or holds
  // NaN or infinite values (which no loss can use, and which a ReLU can hide from the loss).
  void read_row(int index, float* const* outs);
  std::string describe(int index) const;  // names the row's file, list line and row
  int64_t blocks_read() const { return blocks_read_; }  // block reads from disk so far, failed ones included

 private:
  struct File {
    std::string path;
    int line = 0;  // in the list
  };
  struct Block {
    int file = 0;
    long long first = 0;  // first row in the file
    int count = 0;        // rows
    int start = 0;        // index of its first row over all files
  };
  using BlockData = std::vector<std::vector<float>>;  // per dataset: (count, row_size)
  struct Cached {
    int block = 0;
    uint64_t last_use = 0;
    std::shared_future<std::shared_ptr<const BlockData>> data;
  };

  std::string where(const File& file) const;  // "list:line: HDF5 file 'path'"
  // Checks one file's datasets; returns what is wrong with it, empty when usable.
  std::string check_file(const File& file, long long* rows);
  std::shared_ptr<const BlockData> block(int b);  // from the cache, or read
  std::shared_ptr<const BlockData> read_block(int b) const;
  void read_single_row(int index, float* const* outs) const;
  void refuse_non_finite(int index, const float* const* outs) const;  // BadSample naming the dataset
  int block_of(int index) const;

  std::string list_file_;
  HDF5SourceOptions options_;
  std::vector<File> files_;
  std::vector<Block> blocks_;
  std::vector<std::vector<int>> row_shape_;  // per dataset, set by the first usable file
  std::vector<size_t> row_size_;
  int skipped_files_ = 0;

  std::mutex cache_mutex_;
  std::vector<Cached> cache_;  // a handful of entries: searched linearly
  uint64_t clock_ = 0;
  std::atomic<int64_t> blocks_read_{0};
};

}  // namespace crema
