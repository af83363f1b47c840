// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a magic
// number (0, 0, type, rank), big-endian int32 dimensions, then the values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crema::io {

struct IdxArray {
  std::vector<int> dims;      // e.g. (60000, 28, 28)
  std::vector<uint8_t> data;  // row-major
};

// Reads an unsigned-byte IDX file; throws Error naming the file on any problem.
IdxArray read_idx(const std::string& path);
// Writes an unsigned-byte IDX file (uncompressed), for tests and tools.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace crema::io
