// Growing datasets: rows appended batch by batch along the first axis (HDF5Output
// writes one batch per forward). The dataset is chunked with an unlimited first
// axis, so each append writes only the new rows.
#pragma once

#include <string>
#include <vector>

#include "io/hdf5.hpp"

namespace crema::io {

// Appends `shape[0]` rows of shape shape[1..] to float dataset `name`, creating it
// on first use; later appends must have the same row shape (errors name the file,
// the dataset and both shapes).
void append_rows(H5File& file, const std::string& name, const std::vector<int>& shape, const float* data);

}  // namespace crema::io
