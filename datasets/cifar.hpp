// CIFAR-10's binary version (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 binary
// version"): data_batch_1.bin … data_batch_5.bin and test_batch.bin, each 10,000 records of
// 3,073 bytes: the label (0-9), then the 32x32 image as its red, green and blue planes, rows
// top to bottom. What Caffe's convert_cifar_data reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crema {

struct CifarImage {
  int label = 0;
  std::string pixels;  // uint8 (3, 32, 32): R, G, B planes, as the file stores them
};

constexpr int kCifarSide = 32, kCifarChannels = 3;
constexpr size_t kCifarRecordBytes = 1 + kCifarChannels * kCifarSide * kCifarSide;  // 3,073
constexpr int kCifarBatchImages = 10000;

// What keeps the file at `path` from being a CIFAR-10 batch by its size (not a whole number
// of records, CIFAR-100's 3,074-byte ones named as such; more than a batch of them), or "".
std::string cifar10_batch_size_problem(const std::string& path);
// The file's records, in order. Throws Error naming the file when it cannot be read, has a
// size problem or holds a label above 9 (naming the record).
std::vector<CifarImage> read_cifar10_batch(const std::string& path);

}  // namespace crema
