#include "io/hdf5.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <filesystem>

#include "engine/error.hpp"
#include "io/files.hpp"

namespace crema::io {

namespace {

using Lock = std::lock_guard<std::recursive_mutex>;

std::vector<hsize_t> extent(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

// For messages, e.g. "4-byte unsigned integer" or "variable-length string".
std::string type_description(hid_t type) {
  const std::string bytes = std::to_string(H5Tget_size(type)) + "-byte ";
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return bytes + (H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned " : "") + "integer";
    case H5T_FLOAT: return bytes + "float";
    case H5T_STRING: return H5Tis_variable_str(type) > 0 ? "variable-length string" : "fixed-length string";
    case H5T_COMPOUND: return "compound (struct)";
    case H5T_ENUM: return "enum";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_REFERENCE: return "reference";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array";
    case H5T_TIME: return "time";
    default: return "unknown";
  }
}

// Creation properties for a dataset of `dims`, `elem_bytes` each: one chunk holding it
// all, with a Fletcher-32 checksum, so a checkpoint damaged after it was written (a bad
// disk, a flipped bit in a copy) fails to read instead of loading wrong weights. HDF5
// applies the filter itself: Caffe, h5py and h5dump read such files as any other.
// Scalars, empty datasets and those of 4 GiB or more (HDF5's limit on a chunk) stay
// contiguous, without a checksum.
H5Handle checksummed(const std::vector<hsize_t>& dims, size_t elem_bytes) {
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  hsize_t bytes = elem_bytes;
  for (hsize_t d : dims) bytes *= d;
  if (dims.empty() || bytes == 0 || bytes >= (hsize_t{1} << 32) - 1) return dcpl;
  if (H5Pset_chunk(dcpl.get(), static_cast<int>(dims.size()), dims.data()) < 0 || H5Pset_fletcher32(dcpl.get()) < 0)
    return H5Handle(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  return dcpl;
}

bool has_checksum(hid_t ds) {
  H5Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
  unsigned flags = 0;
  size_t values = 0;
  unsigned filter_config = 0;
  return dcpl.get() >= 0 && H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_FLETCHER32, &flags, &values, nullptr, 0,
                                                 nullptr, &filter_config) >= 0;
}

// "the 'lzf' filter (HDF5 filter 32000)" for the first filter of the dataset's pipeline that
// this libhdf5 does not have (h5py's lzf, a plugin's blosc or zstd), or "" when it has all.
// With `first_chunk_only`, only a filter its first chunk went through: h5py makes lzf
// optional, and a chunk it did not shrink is stored raw and reads without it.
std::string missing_filter(hid_t ds, bool first_chunk_only) {
  H5Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
  if (dcpl.get() < 0) return "";
  unsigned skipped_in_first = 0;  // bit i: filter i was not applied to the first chunk
  if (first_chunk_only) {
    H5Handle space(H5Dget_space(ds), H5Sclose);
    std::vector<hsize_t> offset(static_cast<size_t>(std::max(1, H5Sget_simple_extent_ndims(space.get()))));
    haddr_t addr = 0;
    hsize_t size = 0;
    if (H5Dget_chunk_info(ds, space.get(), 0, offset.data(), &skipped_in_first, &addr, &size) < 0) return "";
  }
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n && i < 32; ++i) {
    unsigned flags = 0, filter_config = 0;
    size_t values = 0;
    char name[64] = {};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &values, nullptr, sizeof name,
                                           name, &filter_config);
    if (id < 0 || H5Zfilter_avail(id) > 0 || (skipped_in_first >> i & 1u)) continue;
    const std::string named = name[0] ? "the '" + printable(name) + "' filter" : "a filter";
    return named + " (HDF5 filter " + std::to_string(id) + ")";
  }
  return "";
}

}  // namespace

std::string dims_string(const std::vector<hsize_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return "(" + s + ")";
}

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

void quiet_hdf5_errors() {
  const Lock lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void skip_hdf5_exit_cleanup() { H5dont_atexit(); }

H5File::H5File(const std::string& path, Mode mode) : path_(path) {
  const Lock lock(hdf5_mutex());
  quiet_hdf5_errors();
  hid_t id = -1;
  if (mode == Mode::Read) {
    if (H5Fis_hdf5(path.c_str()) <= 0) throw Error("'" + path + "' is missing or not an HDF5 file");
    id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  } else {
    id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  }
  if (id < 0 && mode == Mode::Read) {
    // Another program holding the file open for writing (h5py.File(path, 'a') in a notebook)
    // locks it: opened without the lock, it reads, and that is the reason to give.
    H5Handle no_lock(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (no_lock.get() >= 0 && H5Pset_file_locking(no_lock.get(), false, true) >= 0)
      if (const hid_t unlocked = H5Fopen(path.c_str(), H5F_ACC_RDONLY, no_lock.get()); unlocked >= 0) {
        H5Fclose(unlocked);
        throw Error("cannot open HDF5 file '" + path +
                    "': HDF5 cannot lock it: another program has it open for writing (a Python session with "
                    "h5py.File(..., 'a' or 'w')?), or its file system takes no locks; close it there and run "
                    "again (HDF5_USE_FILE_LOCKING=FALSE reads it without the lock, at the risk of half-written "
                    "data)");
      }
    // HDF5's signature is there but the library refuses the rest: most often a file cut
    // short by an interrupted copy or download (HDF5 checks the stored end of file).
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    throw Error("cannot open HDF5 file '" + path + "'" +
                (ec ? std::string() : " (" + std::to_string(size) + " bytes)") +
                ": it starts as an HDF5 file but is damaged or cut short (an interrupted copy or download?); use "
                "another copy (of a snapshot: an earlier one)");
  }
  if (id < 0) throw Error("cannot create HDF5 file '" + path + "'");
  file_ = H5Handle(id, H5Fclose);
}

void H5File::fail(const std::string& what) const { throw Error(path_ + ": " + what); }

void H5File::fail_write(const std::string& what) const {
  const int error_number = errno;
  fail(what + " (" + write_failure_reason(path_, error_number) + ")");
}

void H5File::fail_read(hid_t dataset, const std::string& what) const {
  if (const std::string filter = missing_filter(dataset, false); !filter.empty())
    fail("cannot read " + what + ": it is compressed with " + filter + ", which this HDF5 library lacks; " +
         kRewriteWithoutFilter);
  if (has_checksum(dataset))
    fail("cannot read " + what +
         ": its checksum does not match, so the file was damaged after it was written (a bad "
         "disk, or a broken copy); use another copy (of a snapshot: an earlier one)");
  fail("cannot read " + what);
}

void H5File::flush() {
  const Lock lock(hdf5_mutex());
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) fail_write("flush failed");
}

bool H5File::exists(const std::string& object) const {
  const Lock lock(hdf5_mutex());
  // H5Lexists must be asked level by level.
  std::string prefix;
  size_t start = 0;
  while (start <= object.size()) {
    const size_t slash = object.find('/', start);
    prefix = object.substr(0, slash);
    if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

bool H5File::is_dataset(const std::string& object) const {
  const Lock lock(hdf5_mutex());
  if (!exists(object)) return false;
  const H5Handle ds(H5Dopen2(file_.get(), object.c_str(), H5P_DEFAULT), H5Dclose);
  return ds.get() >= 0;
}

void H5File::create_group(const std::string& group) {
  const Lock lock(hdf5_mutex());
  if (exists(group)) return;
  const size_t slash = group.rfind('/');
  if (slash != std::string::npos) create_group(group.substr(0, slash));
  H5Handle g(H5Gcreate2(file_.get(), group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (g.get() < 0) fail("cannot create group '" + group + "'");
}

std::vector<std::string> H5File::children(const std::string& group) const {
  const Lock lock(hdf5_mutex());
  std::vector<std::string> names;
  H5Handle g(H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT), H5Gclose);
  if (g.get() < 0) fail("missing group '" + group + "'");
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) fail("cannot list group '" + group + "'");
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    // Creation order is not tracked by files Caffe writes; ask by name index, then
    // the caller sorts numerically where order matters.
    const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) fail("cannot list group '" + group + "'");
    std::string name(static_cast<size_t>(len), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), static_cast<size_t>(len) + 1,
                       H5P_DEFAULT);
    names.push_back(name);
  }
  return names;
}

void H5File::write_floats(const std::string& name, const std::vector<int>& shape, const float* data) {
  const Lock lock(hdf5_mutex());
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  if (dims.empty()) space = H5Handle(H5Screate(H5S_SCALAR), H5Sclose);
  const H5Handle layout = checksummed(dims, sizeof(float));
  H5Handle ds(
      H5Dcreate2(file_.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, layout.get(), H5P_DEFAULT),
      H5Dclose);
  if (ds.get() < 0) fail("cannot create dataset '" + name + "'");
  if (H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail_write("cannot write dataset '" + name + "'");
}

std::vector<float> H5File::read_floats(const std::string& name, std::vector<int>* shape) const {
  const Lock lock(hdf5_mutex());
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) fail("missing dataset '" + name + "'");
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail("dataset '" + name + "' is not numeric");
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  const std::vector<hsize_t> dims = extent(space.get());
  size_t count = 1;
  shape->clear();
  for (hsize_t d : dims) {
    count *= d;
    // Blobs index with int: a larger dataset would wrap, not fail.
    if (d > INT_MAX || count > INT_MAX)
      fail("dataset '" + name + "' " + dims_string(dims) + " holds more than 2^31-1 values, more than one crema blob holds");
    shape->push_back(static_cast<int>(d));
  }
  std::vector<float> out(count);
  if (count > 0 && H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail_read(ds.get(), "dataset '" + name + "'");
  return out;
}

H5DatasetInfo H5File::dataset_info(const std::string& name) const {
  const Lock lock(hdf5_mutex());
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) fail("missing dataset '" + name + "'");
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  H5DatasetInfo info;
  for (hsize_t d : extent(space.get())) info.dims.push_back(static_cast<long long>(d));
  const H5T_class_t cls = H5Tget_class(type.get());
  info.numeric = cls == H5T_FLOAT || cls == H5T_INTEGER;
  info.type = type_description(type.get());
  info.missing_filter = missing_filter(ds.get(), true);
  return info;
}

void H5File::read_rows(const std::string& name, long long first, long long count, float* out) const {
  const Lock lock(hdf5_mutex());
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) fail("missing dataset '" + name + "'");
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    fail("dataset '" + name + "' holds " + type_description(type.get()) + " values, not numbers");
  H5Handle file_space(H5Dget_space(ds.get()), H5Sclose);
  std::vector<hsize_t> block = extent(file_space.get());
  if (block.empty()) fail("dataset '" + name + "' is a scalar; it has no rows");
  const auto rows = static_cast<long long>(block[0]);
  if (first < 0 || count < 0 || first + count > rows)
    fail("rows " + std::to_string(first) + " to " + std::to_string(first + count) + " are outside dataset '" + name +
         "' of " + std::to_string(rows) + " rows");
  block[0] = static_cast<hsize_t>(count);
  if (std::find(block.begin(), block.end(), 0) != block.end()) return;  // nothing to read
  std::vector<hsize_t> start(block.size(), 0);
  start[0] = static_cast<hsize_t>(first);
  H5Handle mem_space(H5Screate_simple(static_cast<int>(block.size()), block.data(), nullptr), H5Sclose);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr) < 0 ||
      H5Dread(ds.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0)
    fail_read(ds.get(),
              "rows " + std::to_string(first) + " to " + std::to_string(first + count) + " of dataset '" + name + "'");
}

void H5File::write_int(const std::string& name, long long value) {
  const Lock lock(hdf5_mutex());
  const hsize_t one = 1;
  H5Handle space(H5Screate_simple(1, &one, nullptr), H5Sclose);
  H5Handle ds(H5Dcreate2(file_.get(), name.c_str(), H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
  const int v = static_cast<int>(value);
  if (ds.get() < 0) fail("cannot create '" + name + "'");
  if (H5Dwrite(ds.get(), H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0)
    fail_write("cannot write '" + name + "'");
}

long long H5File::read_int(const std::string& name) const {
  const Lock lock(hdf5_mutex());
  std::vector<int> shape;
  std::vector<float> v = read_floats(name, &shape);
  if (v.size() != 1) fail("'" + name + "' should hold one integer");
  // Read again exactly as an integer, floats lose precision past 2^24.
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  long long out = 0;
  if (H5Dread(ds.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &out) < 0) fail("cannot read '" + name + "'");
  // HDF5 converts 3.5 to 3 without a word; a count stored as a float must be a whole number.
  double exact = 0;
  if (H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &exact) < 0)
    fail("cannot read '" + name + "'");
  if (!std::isfinite(exact) || (exact != static_cast<double>(out) && std::abs(exact) < 9e15))
    fail("'" + name + "' holds " + fmt::format("{:.9g}", exact) + ", not a whole number; the file is damaged");
  return out;
}

void H5File::write_string(const std::string& name, const std::string& value) {
  const Lock lock(hdf5_mutex());
  // A fixed-length string, as Caffe's H5LTmake_dataset_string writes it.
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle ds(H5Dcreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
  if (ds.get() < 0) fail("cannot create '" + name + "'");
  if (H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, value.c_str()) < 0)
    fail_write("cannot write '" + name + "'");
}

std::string H5File::read_string(const std::string& name) const {
  const Lock lock(hdf5_mutex());
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) fail("missing dataset '" + name + "'");
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) fail("'" + name + "' is not a string");
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) fail("'" + name + "' should hold exactly one string");
  if (H5Tis_variable_str(type.get()) > 0) {
    char* p = nullptr;
    H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    if (H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0) fail("cannot read '" + name + "'");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t size = H5Tget_size(type.get());
  std::string s(size, '\0');
  if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, s.data()) < 0) fail("cannot read '" + name + "'");
  s.resize(std::min(s.size(), s.find('\0')));
  return s;
}

void H5File::write_bytes(const std::string& name, const std::string& bytes) {
  const Lock lock(hdf5_mutex());
  const hsize_t n = bytes.size();
  H5Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  const H5Handle layout = checksummed({n}, 1);
  H5Handle ds(H5Dcreate2(file_.get(), name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, layout.get(), H5P_DEFAULT),
              H5Dclose);
  if (ds.get() < 0) fail("cannot create '" + name + "'");
  if (n > 0 && H5Dwrite(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0)
    fail_write("cannot write '" + name + "'");
}

std::string H5File::read_bytes(const std::string& name) const {
  const Lock lock(hdf5_mutex());
  H5Handle ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) fail("missing dataset '" + name + "'");
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::string out(static_cast<size_t>(std::max<hssize_t>(n, 0)), '\0');
  if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail_read(ds.get(), "'" + name + "'");
  return out;
}

}  // namespace crema::io
