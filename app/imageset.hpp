// Caffe's dataset tools as subcommands:
//   crema convert-imageset ROOT/ LIST.txt OUT_LMDB   (Caffe's convert_imageset)
//   crema convert-cifar IN OUT                       (Caffe's convert_cifar_data)
//   crema compute-mean DB -o mean.binaryproto        (Caffe's compute_image_mean)
// They read and write Caffe's encodings (Datum records, a legacy 4-D BlobProto), so
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
  int threads = 0;    // decoding threads; 0: one per core
  // Caffe's convert_imageset flags, so that its scripts' command lines run as written.
  int resize_width = -1, resize_height = -1;  // -1: not given; resized only when both > 0, as Caffe
  bool check_size = false;                    // every image of the first one's size, else stop
  std::string encode_type;                    // re-encode to this format ("png", "jpg"); implies encoded
  std::string backend;                        // "lmdb" or empty
};
int convert_imageset(const ConvertImagesetOptions& opt);

// crema convert-cifar IN OUT   (Caffe's convert_cifar_data): CIFAR-10's binary batches in IN
// → OUT/cifar10_train_lmdb and OUT/cifar10_test_lmdb.
struct ConvertCifarOptions {
  std::string input;    // the folder of data_batch_1.bin … data_batch_5.bin and test_batch.bin
  std::string output;   // the folder the two LMDBs go into (made if missing)
  std::string db_type;  // Caffe's third argument: "lmdb" or empty
};
int convert_cifar(const ConvertCifarOptions& opt);

struct ComputeMeanOptions {
  std::string db;
  std::string output;
  std::string backend;  // Caffe's --backend: "lmdb" or empty
  int threads = 0;  // reading threads; 0: one per core
};
int compute_mean(const ComputeMeanOptions& opt);

}  // namespace crema::app
