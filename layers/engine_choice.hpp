// The `engine:` key of the layers that have more than one implementation
// (Convolution, Deconvolution, Pooling, LRN, BatchNorm), with Caffe's names:
//   DEFAULT  the fastest correct one for the device (on a GPU: cuDNN where it
//            computes exactly what Caffe computes, else crema's CUDA kernels)
//   CAFFE    the plain implementation: the CPU reference, and on a GPU crema's own
//            CUDA kernels where the layer has them
//   CUDNN    cuDNN on a GPU (the CPU reference on the CPU, as in Caffe)
#pragma once

#include "engine/config.hpp"

namespace crema {

enum class Engine { DEFAULT, CAFFE, CUDNN };

inline Engine parse_engine(MapReader& r) {
  return static_cast<Engine>(r.get_enum("engine", {"DEFAULT", "CAFFE", "CUDNN"}, 0));
}

}  // namespace crema
