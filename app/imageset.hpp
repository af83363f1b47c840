// Caffe's dataset tools as subcommands:
//   crema convert-imageset ROOT/ LIST.txt OUT_LMDB   (Caffe's convert_imageset)
//   crema compute-mean DB -o mean.binaryproto        (Caffe's compute_image_mean)
// Both read and write Caffe's encodings (Datum records, a legacy 4-D BlobProto), so
// their files pass between crema and Caffe's tools both ways.
#pragma once

#include <cstdint>
#include <string>

namespace crema::app {

struct ConvertImagesetOptions {
  std::string root;    // prefix of the list's paths
  std::string list;    // lines "relative/path label"
  std::string output;  // the new LMDB directory
  std::string resize;  // "WxH", or empty to keep each image's size
  bool gray = false;
  bool shuffle = false;
  bool encoded = false;
  int64_t seed = -1;  // shuffle seed; -1: from the clock (printed, so the order can be repeated)
};
int convert_imageset(const ConvertImagesetOptions& opt);

struct ComputeMeanOptions {
  std::string db;
  std::string output;
};
int compute_mean(const ComputeMeanOptions& opt);

}  // namespace crema::app
