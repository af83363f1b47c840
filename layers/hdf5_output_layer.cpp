#include "layers/hdf5_output_layer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "engine/error.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/hdf5_append.hpp"

namespace crema {

namespace {
// The temporary files this process's HDF5Output layers write, with the layer writing each:
// two layers on one file are told apart from one layer in both the TRAIN and a TEST net.
std::mutex writers_mutex;
std::map<std::string, std::string>& writers() {
  static std::map<std::string, std::string> by_temp_name;
  return by_temp_name;
}
std::string writer_of(const std::string& temp) {
  const std::lock_guard lock(writers_mutex);
  const auto it = writers().find(temp);
  return it == writers().end() ? "" : it->second;
}
void set_writer(const std::string& temp, const std::string& layer) {
  const std::lock_guard lock(writers_mutex);
  if (layer.empty())
    writers().erase(temp);
  else
    writers()[temp] = layer;
}
}  // namespace

HDF5OutputLayer::HDF5OutputLayer(const LayerSpec& spec) : Layer(spec) {
  MapReader r = spec.params("hdf5_output_param");
  file_name_ = r.required("file_name").str();
  if (file_name_.empty()) r.fail("file_name", "file_name must not be empty");
  r.finish();
}

// Not finished: the command failed before it was done with the net. file_name keeps what it
// held (a typo in a re-run must not empty the last run's predictions).
HDF5OutputLayer::~HDF5OutputLayer() {
  if (!file_) return;
  if (rows_ == 0) {
    abandon();
    return;
  }
  file_.reset();
  set_writer(io::resolved_path(temp_name_), "");
  spdlog::warn(
      "{}: the command ended before it was done with the net, so '{}' is left as it was; the {} row(s) "
      "written are in '{}'",
      spec_.name, file_name_, rows_, temp_name_);
}

void HDF5OutputLayer::abandon() {
  if (!file_) return;
  file_.reset();
  set_writer(io::resolved_path(temp_name_), "");
  std::error_code ignored;
  std::filesystem::remove(temp_name_, ignored);
}

void HDF5OutputLayer::finish() {
  if (!file_) return;
  set_writer(io::resolved_path(temp_name_), "");
  try {
    file_->flush();
    file_.reset();
    io::commit_file(temp_name_, file_name_, true);  // the rows exist nowhere else
  } catch (const std::exception& e) {
    file_.reset();
    std::error_code unknown;
    const bool kept = std::filesystem::exists(temp_name_, unknown);
    throw Error(
        spec_.name + ": " + e.what() + " (" +
        (kept ? "the rows written are in '" + temp_name_ + "'; move it to '" + file_name_ + "' once the way is clear"
              : "the rows written are lost") +
        ")");
  }
  spdlog::info("{}: wrote {}", spec_.name, file_name_);
}

void HDF5OutputLayer::layer_setup(Context&, const BlobVec&, const BlobVec&) {
  if (file_) return;  // set up again: keep appending to the same file
  // Here, not when the spec is read: `crema convert` reads it on any machine.
  const std::filesystem::path dir = std::filesystem::path(file_name_).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    spec_.params("hdf5_output_param")
        .fail("file_name", "folder '" + dir.string() + "' does not exist; create it or change file_name");
  try {
    temp_name_ = io::temp_name_for(file_name_);  // a folder or a FIFO in the way, said now
  } catch (const Error& e) {
    spec_.params("hdf5_output_param").fail("file_name", e.what());
  }
  // This process's name: a file another layer (or this layer in another net) writes, however
  // its file_name is spelt.
  if (const std::string other = writer_of(io::resolved_path(temp_name_)); !other.empty())
    spec_.params("hdf5_output_param")
        .fail("file_name", other == spec_.name
                               ? "layer '" + other +
                                     "' is in more than one net of this run (the TRAIN net and a TEST net, " +
                                     "or two TEST nets), and each would write '" + file_name_ +
                                     "'; keep it in one: include: {phase: TEST} (or TRAIN), or a stage rule"
                               : "HDF5Output layer '" + other + "' of this run writes '" + file_name_ +
                                     "' too; give each layer its own file_name");
  try {
    file_ = std::make_unique<io::H5File>(temp_name_, io::H5File::Mode::Create);
    set_writer(io::resolved_path(temp_name_), spec_.name);
  } catch (const Error& e) {
    const std::string folder = dir.empty() ? "." : dir.string();
    const std::string why = ::access(folder.c_str(), W_OK) != 0
                                ? "crema cannot write in the folder '" + folder + "': " + std::strerror(errno)
                                : "";
    spec_.params("hdf5_output_param").fail("file_name", std::string(e.what()) + (why.empty() ? "" : " (" + why + ")"));
  }
}

void HDF5OutputLayer::reshape(const BlobVec& bottom, const BlobVec&) {
  for (int i = 0; i < 2; ++i)
    if (bottom[static_cast<size_t>(i)]->num_axes() < 1)
      spec_.fail("bottom " + std::to_string(i) + " must have a batch axis, got a scalar");
  if (bottom[0]->shape(0) != bottom[1]->shape(0))
    spec_.fail("data and label must have the same batch size; got " + bottom[0]->shape_string() + " and " +
               bottom[1]->shape_string());
  // A dataset's rows have one shape: the first reshape's (refused here rather than in the
  // write, so that a net fed images of their own size keeps one size for this layer).
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<int> row(bottom[i]->shape().begin() + 1, bottom[i]->shape().end());
    if (row_shapes_.size() <= i) row_shapes_.push_back(row);
    if (row != row_shapes_[i])
      spec_.fail("bottom " + std::to_string(i) + " has rows of shape " + shape_string(row) + " but had " +
                 shape_string(row_shapes_[i]) + ": an HDF5 dataset holds rows of one shape");
  }
}

void HDF5OutputLayer::forward_cpu(Context&, const BlobVec& bottom, const BlobVec&) {
  io::append_rows(*file_, "data", bottom[0]->shape(), bottom[0]->cpu_data());   // (N, ...)
  io::append_rows(*file_, "label", bottom[1]->shape(), bottom[1]->cpu_data());  // (N, ...)
  file_->flush();
  rows_ += bottom[0]->shape(0);
}

CREMA_REGISTER_LAYER("HDF5Output", HDF5OutputLayer);

}  // namespace crema
