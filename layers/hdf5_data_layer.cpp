#include "layers/hdf5_data_layer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/error.hpp"
#include "io/hdf5.hpp"

namespace crema {

HDF5DataParams HDF5DataParams::parse(MapReader r) {
  HDF5DataParams p;
  p.source = r.required("source").str();
  p.batch_size = r.required("batch_size").as_int();
  if (p.batch_size <= 0) r.fail("batch_size", "batch_size must be positive");
  p.shuffle = r.get_bool("shuffle", false);
  r.finish();
  return p;
}

HDF5DataLayer::HDF5DataLayer(const LayerSpec& spec)
    : Layer(spec), params_(HDF5DataParams::parse(spec.params("hdf5_data_param"))) {}

void HDF5DataLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec& top) {
  namespace fs = std::filesystem;
  std::ifstream list(params_.source);
  if (!list) spec_.fail("cannot read the HDF5 file list '" + params_.source + "' (hdf5_data_param.source)");
  std::vector<std::string> files;
  std::string line;
  int line_no = 0;
  while (std::getline(list, line)) {
    ++line_no;
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty() || line[0] == '#') continue;
    // Relative paths: as Caffe (from the working directory), else next to the list.
    fs::path p(line);
    if (p.is_relative() && !fs::exists(p)) p = fs::path(params_.source).parent_path() / p;
    if (!fs::exists(p))
      spec_.fail(params_.source + ":" + std::to_string(line_no) + ": HDF5 file '" + line + "' does not exist");
    files.push_back(p.string());
  }
  if (files.empty()) spec_.fail("the HDF5 file list '" + params_.source + "' names no files");

  rows_.assign(top.size(), {});
  row_shape_.assign(top.size(), {});
  num_rows_ = 0;
  for (const auto& file : files) {
    io::H5File f(file, io::H5File::Mode::Read);
    int file_rows = -1;
    for (size_t t = 0; t < top.size(); ++t) {
      const std::string& name = spec_.top[t];
      if (!f.exists(name)) spec_.fail("HDF5 file '" + file + "' has no dataset '" + name + "' (datasets are named after the tops)");
      std::vector<int> shape;
      std::vector<float> v = f.read_floats(name, &shape);
      if (shape.empty()) spec_.fail("dataset '" + name + "' in '" + file + "' is a scalar; its first axis must index samples");
      std::vector<int> row(shape.begin() + 1, shape.end());
      if (row_shape_[t].empty() && num_rows_ == 0) row_shape_[t] = row;
      if (row != row_shape_[t])
        spec_.fail("dataset '" + name + "' in '" + file + "' has rows of shape " + shape_string(row) + " but earlier files have " +
                   shape_string(row_shape_[t]));
      if (file_rows >= 0 && shape[0] != file_rows)
        spec_.fail("datasets in '" + file + "' have different numbers of rows (" + std::to_string(file_rows) + " vs " +
                   std::to_string(shape[0]) + ")");
      file_rows = shape[0];
      rows_[t].insert(rows_[t].end(), v.begin(), v.end());
    }
    num_rows_ += file_rows;
  }
  sampler_.init(num_rows_, params_.shuffle, ctx.rng().next_u32());
  spdlog::info("{}: {} rows from {} HDF5 file(s)", spec_.name, num_rows_, files.size());
}

void HDF5DataLayer::reshape(const BlobVec&, const BlobVec& top) {
  for (size_t t = 0; t < top.size(); ++t) {
    std::vector<int> shape = {params_.batch_size};
    shape.insert(shape.end(), row_shape_[t].begin(), row_shape_[t].end());
    top[t]->reshape(shape);
  }
}

void HDF5DataLayer::forward_cpu(Context&, const BlobVec&, const BlobVec& top) {
  for (int n = 0; n < params_.batch_size; ++n) {
    const int row = sampler_.next();
    for (size_t t = 0; t < top.size(); ++t) {
      const size_t dim = static_cast<size_t>(top[t]->count(1));
      std::memcpy(top[t]->mutable_cpu_data() + static_cast<size_t>(n) * dim, rows_[t].data() + static_cast<size_t>(row) * dim,
                  dim * sizeof(float));
    }
  }
}

CREMA_REGISTER_LAYER("HDF5Data", HDF5DataLayer);

}  // namespace crema
