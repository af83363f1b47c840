// HDF5Output (Caffe's HDF5OutputLayer): writes its two bottoms to an HDF5 file, the
// first as dataset `data`, the second as `label` (the names HDF5Data reads), every
// forward appending its batch, so the file ends up with all rows in order. Both
// bottoms must have the same first dimension; datasets keep the bottoms' own shapes.
// hdf5_output_param: file_name (required; its folder must exist).
// The rows go to a temporary file next to file_name (`<file_name>.tmp-<pid>`,
// flushed after every batch) that is synced and renamed to file_name when the command is
// done with the net (finish(): the end of `crema test`, training, a stopped run), so
// file_name only ever holds a complete file. A command that fails first, or that writes no
// outputs (crema time, abandon()), leaves file_name as it was: the temporary file is
// removed, or kept with a warning when it holds the rows of a failed run. No tops, no gradient. On a GPU the layer
// still reads its bottoms on the host: writing them to a file is its whole job.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/layer.hpp"
#include "io/hdf5.hpp"

namespace crema {

class HDF5OutputLayer : public Layer {
 public:
  explicit HDF5OutputLayer(const LayerSpec& spec);
  ~HDF5OutputLayer() override;
  const char* type() const override { return "HDF5Output"; }
  int exact_num_bottom() const override { return 2; }
  int exact_num_top() const override { return 0; }
  bool allow_force_backward(int) const override { return false; }
  bool backward_refuses(int) const override { return false; }  // as Caffe's backward
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;
  // Renames the finished file into place; a failure throws, naming the layer and where the rows
  // are. Not called (a failed command), the destructor leaves file_name as it was.
  void finish() override;
  void abandon() override;
  std::vector<std::string> files_written() const override { return {file_name_}; }

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
#ifdef CREMA_WITH_CUDA
  // The bottoms come to the host (one copy each) to be written.
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override { forward_cpu(ctx, bottom, top); }
  void backward_gpu(Context&, const BlobVec&, const std::vector<bool>&, const BlobVec&) override {}
#endif

 private:
  std::string file_name_, temp_name_;
  std::unique_ptr<io::H5File> file_;
  std::vector<std::vector<int>> row_shapes_;  // per bottom: the shape after the batch axis
  long long rows_ = 0;                        // written to temp_name_
};

}  // namespace crema
