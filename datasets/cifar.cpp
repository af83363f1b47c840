#include "datasets/cifar.hpp"

#include <filesystem>

#include "engine/error.hpp"
#include "io/files.hpp"

namespace crema {

namespace {
std::string size_problem(const std::string& path, uintmax_t size) {
  if (size == 0 || size % kCifarRecordBytes != 0) {
    const bool cifar100 = size != 0 && size % (kCifarRecordBytes + 1) == 0;
    return "'" + path + "' is not a batch of CIFAR-10's binary version: " + std::to_string(size) +
           " bytes are not a whole number of 3,073-byte records" +
           (cifar100 ? " (they are of 3,074-byte ones, CIFAR-100's, which crema does not convert)" : "") +
           "; give the folder of data_batch_1.bin … data_batch_5.bin and test_batch.bin (cifar-10-binary.tar.gz)";
  }
  if (size / kCifarRecordBytes > static_cast<uintmax_t>(kCifarBatchImages))
    return "'" + path + "' holds " + std::to_string(size / kCifarRecordBytes) + " records; a CIFAR-10 batch holds " +
           std::to_string(kCifarBatchImages);
  return "";
}
}  // namespace

std::string cifar10_batch_size_problem(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? "cannot read '" + path + "': " + ec.message() : size_problem(path, size);
}

std::vector<CifarImage> read_cifar10_batch(const std::string& path) {
  const std::string bytes = io::read_file_bytes(path);
  if (const std::string problem = size_problem(path, bytes.size()); !problem.empty()) throw Error(problem);
  const size_t count = bytes.size() / kCifarRecordBytes;
  std::vector<CifarImage> images(count);
  for (size_t i = 0; i < count; ++i) {
    const char* record = bytes.data() + i * kCifarRecordBytes;  // label, then (3, 32, 32)
    images[i].label = static_cast<unsigned char>(record[0]);
    if (images[i].label > 9)
      throw Error("'" + path + "' record " + std::to_string(i) + " (byte " + std::to_string(i * kCifarRecordBytes) +
                  ") has label " + std::to_string(images[i].label) +
                  "; CIFAR-10's labels are 0-9, so this is not a batch of its binary version");
    images[i].pixels.assign(record + 1, kCifarRecordBytes - 1);
  }
  return images;
}

}  // namespace crema
