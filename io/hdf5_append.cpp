#include "io/hdf5_append.hpp"

#include <algorithm>

namespace crema::io {

void append_rows(H5File& file, const std::string& name, const std::vector<int>& shape, const float* data) {
  const std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());  // calls the C API directly
  if (shape.empty()) file.fail("cannot append a scalar to '" + name + "'; rows need a first axis");
  const int rank = static_cast<int>(shape.size());
  const std::vector<hsize_t> rows(shape.begin(), shape.end());
  std::vector<hsize_t> old = rows;  // the dataset's current extent
  old[0] = 0;
  H5Handle ds;
  if (!file.exists(name)) {
    std::vector<hsize_t> max_dims = rows, chunk = rows;
    max_dims[0] = H5S_UNLIMITED;
    // One batch per chunk (every chunk dimension must be positive).
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    H5Handle space(H5Screate_simple(rank, old.data(), max_dims.data()), H5Sclose);
    H5Handle props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (H5Pset_chunk(props.get(), rank, chunk.data()) < 0) file.fail("cannot lay out dataset '" + name + "'");
    ds = H5Handle(H5Dcreate2(file.id(), name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, props.get(),
                             H5P_DEFAULT),
                  H5Dclose);
    if (ds.get() < 0) file.fail("cannot create dataset '" + name + "'");
  } else {
    ds = H5Handle(H5Dopen2(file.id(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (ds.get() < 0) file.fail("cannot open dataset '" + name + "'");
    H5Handle space(H5Dget_space(ds.get()), H5Sclose);
    if (H5Sget_simple_extent_ndims(space.get()) != rank)
      file.fail("rows of '" + name + "' changed their number of axes");
    H5Sget_simple_extent_dims(space.get(), old.data(), nullptr);
    if (!std::equal(old.begin() + 1, old.end(), rows.begin() + 1))
      file.fail("rows of '" + name + "' changed shape: the dataset is " + dims_string(old) + ", the new batch " +
                dims_string(rows) + "; every batch must have the same shape after the first axis");
  }
  if (rows[0] == 0) return;
  std::vector<hsize_t> grown = old, start(rows.size(), 0);
  grown[0] += rows[0];
  start[0] = old[0];
  if (H5Dset_extent(ds.get(), grown.data()) < 0) file.fail("cannot grow dataset '" + name + "'");
  H5Handle file_space(H5Dget_space(ds.get()), H5Sclose);
  H5Handle mem_space(H5Screate_simple(rank, rows.data(), nullptr), H5Sclose);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, rows.data(), nullptr) < 0 ||
      H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT, data) < 0)
    file.fail_write("cannot write dataset '" + name + "'");
}

}  // namespace crema::io
