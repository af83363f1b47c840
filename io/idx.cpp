#include "io/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "engine/error.hpp"

namespace crema::io {

IdxArray read_idx(const std::string& path) {
  // gzread reads gzip and plain files alike.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) {
    const int error = errno ? errno : ENOENT;
    // The dataset packages ship the .gz files, a download script the plain ones.
    const std::string other = path.ends_with(".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
    std::error_code ec;
    const std::string hint = error == ENOENT && std::filesystem::is_regular_file(other, ec)
                                 ? " ('" + other + "' exists: did you mean it?)"
                                 : "";
    throw Error("cannot open IDX file '" + path + "': " + std::strerror(error) + hint);
  }
  auto read = [&](void* dst, size_t n, const char* what) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(f.get(), static_cast<char*>(dst) + done, chunk);
      if (got <= 0) throw Error("IDX file '" + path + "' is truncated or corrupt (while reading " + what + ")");
      done += static_cast<size_t>(got);
    }
  };
  uint8_t magic[4];
  read(magic, 4, "the header");
  if (magic[0] != 0 || magic[1] != 0)
    throw Error("'" + path + "' is not an IDX file (bad magic number)");
  if (magic[2] != 0x08)
    throw Error("IDX file '" + path + "' holds element type 0x" + std::to_string(magic[2]) +
                "; crema reads unsigned-byte (0x08) IDX files");
  const int rank = magic[3];
  if (rank < 1 || rank > 4) throw Error("IDX file '" + path + "' has unsupported rank " + std::to_string(rank));
  IdxArray out;
  size_t count = 1;
  for (int i = 0; i < rank; ++i) {
    uint8_t b[4];
    read(b, 4, "the dimensions");
    const uint32_t d = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    if (d > (1u << 30)) throw Error("IDX file '" + path + "' has an implausible dimension " + std::to_string(d));
    if (d == 0) throw Error("IDX file '" + path + "' has a dimension of 0 (axis " + std::to_string(i) + "): it holds no samples or empty ones");
    out.dims.push_back(static_cast<int>(d));
    count *= d;
    // Each dimension is capped above; the product must stay sane too (2^36 bytes).
    if (count > (size_t{1} << 36))
      throw Error("IDX file '" + path + "' declares " + std::to_string(count) + "+ values; it is corrupt or not an IDX file");
  }
  // Grown as the values arrive: a corrupt header claiming gigabytes fails at the file's
  // end instead of allocating what it claims first.
  constexpr size_t kChunk = size_t{64} << 20;
  while (out.data.size() < count) {
    const size_t done = out.data.size(), n = std::min(count - done, kChunk);
    out.data.resize(done + n);
    read(out.data.data() + done, n, "the values");
  }
  // Bytes beyond what the header declares: the header or the file is damaged (or two
  // files were joined), and the samples read may not be the ones meant.
  char extra;
  if (gzread(f.get(), &extra, 1) > 0)
    throw Error("IDX file '" + path + "' holds more bytes than its header declares (" + std::to_string(count) +
                " values); the file is damaged or its header is wrong");
  return out;
}

void write_idx(const std::string& path, const IdxArray& array) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write IDX file '" + path + "'");
  const uint8_t magic[4] = {0, 0, 0x08, static_cast<uint8_t>(array.dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (int d : array.dims) {
    const uint32_t v = static_cast<uint32_t>(d);
    const uint8_t b[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                          static_cast<uint8_t>(v)};
    out.write(reinterpret_cast<const char*>(b), 4);
  }
  out.write(reinterpret_cast<const char*>(array.data.data()), static_cast<std::streamsize>(array.data.size()));
  if (!out) throw Error("cannot write IDX file '" + path + "'");
}

}  // namespace crema::io
