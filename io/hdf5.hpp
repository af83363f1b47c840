// Minimal RAII over the HDF5 C API for what crema stores: N-D float datasets,
// scalar ints, strings and byte arrays, in nested groups, and row blocks of large
// datasets read a block at a time. Every failure becomes a crema::Error naming the
// file and object, instead of HDF5's error-stack dump.
//
// Threads. A libhdf5 built without --enable-threadsafe (as some distributions
// ship it) must never be entered by two threads at once, and data layers read
// from worker threads while the solver writes snapshots. So every HDF5 call in
// crema is made holding hdf5_mutex(): each H5File method and H5Handle::reset take
// it, and code that calls the C API directly on file.id() must take it too.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>
#include <vector>

namespace crema::io {

// The one lock around the HDF5 library for the whole process. Recursive, so that
// an H5File method may call another (and close handles) while holding it.
std::recursive_mutex& hdf5_mutex();

class H5Handle {
 public:
  H5Handle() = default;
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t get() const { return id_; }
  void reset() {
    if (id_ >= 0 && close_) {
      std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
      close_(id_);
    }
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// A dataset's layout and element type, read without its data.
struct H5DatasetInfo {
  std::vector<long long> dims;  // empty for a scalar; dims[0] counts rows
  bool numeric = false;         // integer or floating point, so readable as float
  std::string type;             // for messages: "8-byte float", "string", …
  std::string missing_filter;   // a filter its first chunk needs that libhdf5 lacks, or ""
};

// What to do about a dataset compressed with a filter this HDF5 library lacks.
inline constexpr const char* kRewriteWithoutFilter =
    "rewrite it uncompressed or with gzip, which every HDF5 library reads (h5py: compression='gzip')";

class H5File {
 public:
  enum class Mode { Read, Create };
  H5File(const std::string& path, Mode mode);
  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }
  void flush();
  void close() { file_.reset(); }

  // Object paths are relative to the file root, e.g. "data/conv1/0".
  bool exists(const std::string& object) const;
  bool is_dataset(const std::string& object) const;  // exists, and is a dataset (not a group)
  void create_group(const std::string& group);
  std::vector<std::string> children(const std::string& group) const;  // in creation/name order

  void write_floats(const std::string& name, const std::vector<int>& shape, const float* data);
  // Reads any numeric dataset as float; returns its shape.
  std::vector<float> read_floats(const std::string& name, std::vector<int>* shape) const;
  // Metadata only: cheap for a dataset of any size.
  H5DatasetInfo dataset_info(const std::string& name) const;
  // Rows [first, first + count) of numeric dataset `name` (rank >= 1), selected by a
  // hyperslab on the first axis and converted to float. out: (count, row size).
  void read_rows(const std::string& name, long long first, long long count, float* out) const;
  void write_int(const std::string& name, long long value);
  long long read_int(const std::string& name) const;
  void write_string(const std::string& name, const std::string& value);
  std::string read_string(const std::string& name) const;
  void write_bytes(const std::string& name, const std::string& bytes);
  std::string read_bytes(const std::string& name) const;

  [[noreturn]] void fail(const std::string& what) const;
  // A write (`what`, e.g. "cannot write dataset 'x'") failed: says so with the system's
  // reason. Called straight after the failed call, while errno still holds it.
  [[noreturn]] void fail_write(const std::string& what) const;
  // A read of `dataset` (`what`, e.g. "dataset 'x'") failed: says so, and whether its
  // checksum is why.
  [[noreturn]] void fail_read(hid_t dataset, const std::string& what) const;

 private:
  std::string path_;
  H5Handle file_;
};

// Silences HDF5's automatic error-stack printing (called once at startup).
void quiet_hdf5_errors();

// Called first in main, before any other HDF5 call: HDF5 then closes no files at exit. After
// a write fails on a full disk (or over a quota or a file-size limit), H5Fclose cannot flush
// the file and HDF5 keeps it open; its exit handler would try again and crash (HDF5 1.10
// segfaults in H5F__close_cb), turning a clear error into a core dump. Every file crema writes
// is closed by its owner before main returns, so the handler has nothing else to do.
void skip_hdf5_exit_cleanup();

// "(2 x 3 x 4)", for messages.
std::string dims_string(const std::vector<hsize_t>& dims);

}  // namespace crema::io
