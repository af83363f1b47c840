#include "datasets/hdf5_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "datasets/prefetcher.hpp"
#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/hdf5.hpp"

namespace crema {

namespace {

// "(3 x 2)"; "() (one value per row)" for a dataset of rank 1.
std::string row_text(const std::vector<int>& row) {
  std::string s;
  for (size_t i = 0; i < row.size(); ++i) s += (i ? " x " : "") + std::to_string(row[i]);
  return "(" + s + ")" + (row.empty() ? " (one value per row)" : "");
}

}  // namespace

std::vector<std::string> HDF5Source::file_paths() const {
  std::vector<std::string> paths;
  for (const File& f : files_) paths.push_back(f.path);
  return paths;
}

HDF5Source::HDF5Source(const std::string& list_file, HDF5SourceOptions options)
    : list_file_(list_file), options_(std::move(options)) {
  namespace fs = std::filesystem;
  std::ifstream list(list_file_);
  if (!list)
    throw Error("cannot read the HDF5 file list '" + list_file_ + "': " + std::strerror(errno ? errno : ENOENT) +
                " (HDF5Data's source is a text file naming one .h5 file per line)");
  std::vector<File> listed;
  std::string line;
  int line_no = 0;
  while (std::getline(list, line)) {
    ++line_no;
    if (line_no == 1 && line.rfind("\x89HDF", 0) == 0)
      throw Error("'" + list_file_ + "' is an HDF5 file, but HDF5Data's source is a text file listing HDF5 files, "
                  "one path per line: write its path into such a list and name the list as the source");
    if (line_no == 1 && line.rfind("\xef\xbb\xbf", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty() || line[0] == '#') continue;
    // Relative paths: as Caffe (from the working directory), else next to the list.
    fs::path p(line);
    if (p.is_relative() && !fs::exists(p)) p = fs::path(list_file_).parent_path() / p;
    if (!fs::exists(p)) {
      // "img/cat.png 3": a line of an image list, given where HDF5 files are listed.
      const size_t blank = line.find_last_of(" \t");
      const std::string label = blank == std::string::npos ? "" : line.substr(blank + 1);
      const bool image_line = blank != std::string::npos && line.find_first_not_of(" \t") < blank &&
                              label.find_first_not_of("-0123456789") == std::string::npos &&
                              label.find_first_of("0123456789") != std::string::npos;
      throw Error(list_file_ + ":" + std::to_string(line_no) + ": HDF5 file '" + line + "' does not exist" +
                  (image_line
                       ? std::string("; the line reads as an image list's (a path and a label): HDF5Data's source "
                                     "lists HDF5 files, and an image list is an ImageData layer's source")
                       : std::string()));
    }
    listed.push_back({p.string(), line_no});
  }
  if (listed.empty()) throw Error("the HDF5 file list '" + list_file_ + "' names no files");

  const size_t num_datasets = options_.datasets.size();
  row_shape_.assign(num_datasets, {});
  row_size_.assign(num_datasets, 1);
  long long total = 0;
  for (const File& file : listed) {
    long long rows = 0;
    const std::string wrong = check_file(file, &rows);
    if (!wrong.empty()) {
      if (!options_.skip_bad)
        throw Error(where(file) + ": " + wrong +
                    (options_.paired ? "; fix it or take it out of the list (skipping it would shift this layer's rows "
                                       "against those of the net's other data layers)"
                                     : "; fix or remove it, or set on_bad_sample: skip to leave it out"));
      spdlog::warn("{}: {}; skipped (on_bad_sample: skip)", where(file), wrong);
      ++skipped_files_;
      continue;
    }
    if (files_.empty())  // the first usable file sets the row shapes
      for (size_t d = 0; d < num_datasets; ++d) {
        const std::vector<int>& shape = row_shape_[d];
        row_size_[d] = 1;
        for (int s : shape) row_size_[d] *= static_cast<size_t>(s);
      }
    if (total + rows > INT_MAX)
      throw Error(where(file) + ": the files hold more than " + std::to_string(INT_MAX) + " rows, more than crema can index");
    // Blocks of whole rows, about block_bytes of floats each, one row at least.
    size_t row_bytes = 0;
    for (size_t s : row_size_) row_bytes += s * sizeof(float);
    const long long per_block = std::max<long long>(1, static_cast<long long>(options_.block_bytes / std::max<size_t>(row_bytes, 1)));
    for (long long first = 0; first < rows; first += per_block) {
      const int count = static_cast<int>(std::min(per_block, rows - first));
      blocks_.push_back({static_cast<int>(files_.size()), first, count, static_cast<int>(total + first)});
    }
    total += rows;
    files_.push_back(file);
  }
  if (files_.empty())
    throw Error("no usable file in the HDF5 file list '" + list_file_ + "': all " + std::to_string(skipped_files_) +
                " were skipped (see the warnings above)");
  if (total == 0) throw Error("the files of the HDF5 file list '" + list_file_ + "' hold no rows");
}

std::string HDF5Source::where(const File& file) const {
  return list_file_ + ":" + std::to_string(file.line) + ": HDF5 file '" + file.path + "'";
}

std::string HDF5Source::check_file(const File& file, long long* rows) {
  std::unique_ptr<io::H5File> f;
  try {
    f = std::make_unique<io::H5File>(file.path, io::H5File::Mode::Read);
  } catch (const Error& e) {
    throw Error(list_file_ + ":" + std::to_string(file.line) + ": " + e.what());
  }
  std::vector<std::vector<int>> shapes;
  long long first_rows = -1;
  std::string wrong;
  for (const std::string& name : options_.datasets) {
    if (!f->is_dataset(name)) {
      std::string has;
      for (const auto& child : f->children("/")) has += (has.empty() ? "" : ", ") + child;
      throw Error(
          where(file) +
          (f->exists(name) ? " has a group '" + name + "' where a dataset is read" : " has no dataset '" + name + "'") +
          " (datasets are named after the tops; it has: " + (has.empty() ? "nothing" : has) + ")");
    }
    const io::H5DatasetInfo info = f->dataset_info(name);
    if (!info.numeric)
      throw Error(where(file) + ": dataset '" + name + "' holds " + info.type +
                  " values; HDF5Data reads numbers (integer or floating point) only" +
                  // h5py stores a numpy bool array as an HDF5 enum (FALSE, TRUE).
                  (info.type == "enum" ? " (a numpy bool array is stored as an enum: write it with .astype('uint8') "
                                         "or .astype('float32'))"
                                       : ""));
    if (info.dims.empty())
      throw Error(where(file) + ": dataset '" + name + "' is a scalar; its first axis must index rows (samples)");
    if (!info.missing_filter.empty())  // else every row fails to read, each a skipped sample
      throw Error(where(file) + ": dataset '" + name + "' is compressed with " + info.missing_filter +
                  ", which this HDF5 library lacks; " + io::kRewriteWithoutFilter);
    std::vector<int> row;
    for (size_t i = 1; i < info.dims.size(); ++i) {
      if (info.dims[i] > INT_MAX) throw Error(where(file) + ": dataset '" + name + "' has an axis too long for crema");
      row.push_back(static_cast<int>(info.dims[i]));
    }
    if (wrong.empty() && std::find(row.begin(), row.end(), 0) != row.end())
      wrong = "dataset '" + name + "' has empty rows (shape " + row_text(row) + ")";
    if (first_rows < 0) first_rows = info.dims[0];
    if (wrong.empty() && info.dims[0] != first_rows)
      wrong = "its datasets have different numbers of rows ('" + options_.datasets.front() + "' " +
              std::to_string(first_rows) + ", '" + name + "' " + std::to_string(info.dims[0]) + ")";
    const size_t d = shapes.size();
    // Not a bad sample to skip: which of the two files is the odd one is not known, and skipping
    // by the first one trained on whatever it held (one file of three, in a user's list).
    if (wrong.empty() && !files_.empty() && row != row_shape_[d])
      throw Error(where(file) + ": dataset '" + name + "' has rows of shape " + row_text(row) +
                  " but the first file's (" + where(files_.front()) + ") have " + row_text(row_shape_[d]) +
                  "; the files of a list hold rows of one shape: fix or leave out the odd one");
    shapes.push_back(row);
  }
  *rows = first_rows;
  if (wrong.empty() && files_.empty()) row_shape_ = shapes;
  return wrong;
}

std::vector<int> HDF5Source::block_sizes() const {
  std::vector<int> sizes;
  for (const Block& b : blocks_) sizes.push_back(b.count);
  return sizes;
}

int HDF5Source::block_of(int index) const {
  const auto it = std::upper_bound(blocks_.begin(), blocks_.end(), index,
                                   [](int i, const Block& b) { return i < b.start; });
  return static_cast<int>(it - blocks_.begin()) - 1;
}

std::string HDF5Source::describe(int index) const {
  const Block& b = blocks_[static_cast<size_t>(block_of(index))];
  const File& f = files_[static_cast<size_t>(b.file)];
  return "row " + std::to_string(b.first + (index - b.start)) + " of HDF5 file '" + f.path + "' (" + list_file_ + ":" +
         std::to_string(f.line) + ")";
}

std::shared_ptr<const HDF5Source::BlockData> HDF5Source::read_block(int b) const {
  const Block& block = blocks_[static_cast<size_t>(b)];
  io::H5File f(files_[static_cast<size_t>(block.file)].path, io::H5File::Mode::Read);
  auto data = std::make_shared<BlockData>(options_.datasets.size());
  for (size_t d = 0; d < options_.datasets.size(); ++d) {
    (*data)[d].resize(static_cast<size_t>(block.count) * row_size_[d]);
    f.read_rows(options_.datasets[d], block.first, block.count, (*data)[d].data());
  }
  return data;
}

std::shared_ptr<const HDF5Source::BlockData> HDF5Source::block(int b) {
  std::promise<std::shared_ptr<const BlockData>> promise;
  std::shared_future<std::shared_ptr<const BlockData>> data;
  bool reader = false;  // whether this thread reads the block
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const uint64_t now = ++clock_;
    auto hit = std::find_if(cache_.begin(), cache_.end(), [b](const Cached& c) { return c.block == b; });
    if (hit != cache_.end()) {
      hit->last_use = now;
      data = hit->data;
    } else {
      // Evict the least recently used; a thread still reading it keeps its copy alive.
      if (static_cast<int>(cache_.size()) >= std::max(options_.cached_blocks, 1))
        cache_.erase(std::min_element(cache_.begin(), cache_.end(),
                                      [](const Cached& x, const Cached& y) { return x.last_use < y.last_use; }));
      data = promise.get_future().share();
      cache_.push_back({b, now, data});
      reader = true;
    }
  }
  if (reader) {
    // Others asking for the block meanwhile wait on the future instead of reading it
    // again. A failure stays cached too, so the block's other rows go straight to
    // read_single_row instead of each trying the whole block again.
    ++blocks_read_;
    try {
      promise.set_value(read_block(b));
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
  }
  return data.get();
}

void HDF5Source::read_single_row(int index, float* const* outs) const {
  const Block& block = blocks_[static_cast<size_t>(block_of(index))];
  io::H5File f(files_[static_cast<size_t>(block.file)].path, io::H5File::Mode::Read);
  for (size_t d = 0; d < options_.datasets.size(); ++d)
    f.read_rows(options_.datasets[d], block.first + (index - block.start), 1, outs[d]);
}

void HDF5Source::read_row(int index, float* const* outs) {
  if (index < 0 || index >= size()) throw Error("HDF5 row " + std::to_string(index) + " is out of range");
  const int b = block_of(index);
  std::shared_ptr<const BlockData> data;
  try {
    data = block(b);
  } catch (const Error&) {
    // The block failed as a whole (a damaged chunk, a file gone): try the row alone,
    // so that only rows that really cannot be read are bad.
    try {
      read_single_row(index, outs);
    } catch (const Error& e) {
      throw BadSample(describe(index) + " cannot be read: " + e.what());
    }
    return refuse_non_finite(index, outs);
  }
  const size_t row = static_cast<size_t>(index - blocks_[static_cast<size_t>(b)].start);
  for (size_t d = 0; d < data->size(); ++d)
    std::memcpy(outs[d], (*data)[d].data() + row * row_size_[d], row_size_[d] * sizeof(float));
  refuse_non_finite(index, outs);
}

void HDF5Source::refuse_non_finite(int index, const float* const* outs) const {
  for (size_t d = 0; d < options_.datasets.size(); ++d)
    if (const long long bad = cpu_count_non_finite(static_cast<long long>(row_size_[d]), outs[d]); bad > 0)
      throw BadSample(describe(index) + ": dataset '" + options_.datasets[d] + "' holds " + std::to_string(bad) +
                      " NaN or infinite value(s) of " + std::to_string(row_size_[d]) + " in this row");
}

}  // namespace crema
