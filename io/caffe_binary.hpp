// Caffe's binary protobuf files, read with io/protobuf_wire.hpp (no libprotobuf):
//   .caffemodel   NetParameter: each layer's name and parameter blobs, from the
//                 current `layer` list (field 100) or the V1 `layers` list (field 2)
//   .solverstate  SolverState: iter, learned_net, history (momentum), current_step
//   .binaryproto  one BlobProto, e.g. the mean image compute_image_mean writes
// A BlobProto's shape is its legacy num/channels/height/width when any of them is
// present (always 4-D, as Caffe reads it), else its `shape`; `double_data` wins over
// `data`. The 4-D legacy shapes of InnerProduct, Convolution and Deconvolution blobs are
// given the net's shapes (1×1×N×K weight → N×K, 1×1×1×N bias → N), which Caffe writes. Every problem is one Error
// naming the file (and, for a corrupt file, the byte offset and the message being read).
#pragma once

#include <string>

#include "engine/blob.hpp"
#include "engine/solver.hpp"
#include "io/checkpoint.hpp"

namespace crema::io {

// Whether `path` holds an HDF5 file: its signature at byte 0 or at a user-block
// offset (512, 1024, 2048, ...). Decided by content, not by the file name, since
// Caffe users name binary and HDF5 files alike. Throws Error if it cannot be read.
bool has_hdf5_signature(const std::string& path);

// Layers in file order, parameter-free ones included (with no blobs).
Weights read_caffemodel(const std::string& path);

struct CaffeSolverState {
  SolverState state;        // iter, current_step, history; the rest stays empty
  std::string learned_net;  // the weights file, as Caffe wrote it
};
CaffeSolverState read_binary_solver_state(const std::string& path);

Blob read_binaryproto(const std::string& path);

}  // namespace crema::io
