#include "io/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/error.hpp"

namespace crema::io {

namespace fs = std::filesystem;

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : ENOENT));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : EIO));
  return bytes;
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_atomically(path, [&](const std::string& tmp) {
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    bool ok = file && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    if (file) ok = std::fclose(file) == 0 && ok;
    if (!ok) throw Error("cannot write '" + path + "': " + std::strerror(errno ? errno : EIO));
  });
}

bool looks_like_text(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return true;
  std::ifstream in(path, std::ios::binary);
  char head[4096];
  in.read(head, sizeof head);
  // Tab, newline, vertical tab, form feed, carriage return and escape occur in text;
  // the other C0 controls do not, while a protobuf's small lengths and tags (and any
  // float data) produce them within the first bytes.
  return std::none_of(head, head + in.gcount(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x20 && !(b >= 0x09 && b <= 0x0d) && b != 0x1b;
  });
}

bool ends_with_nocase(std::string_view name, std::string_view suffix) {
  if (name.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), name.end() - static_cast<long>(suffix.size()), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

std::vector<std::string> regular_file_names(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : fs::path(folder), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code file_ec;
    if (it->is_regular_file(file_ec)) names.push_back(it->path().filename().string());
  }
  return names;
}

std::optional<std::string> missing_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (parent.empty() || fs::is_directory(parent, ec)) return std::nullopt;
  return "cannot write '" + path + "': the folder '" + parent.string() +
         "' does not exist; create it or choose another path";
}

std::string temp_name_for(const std::string& path) {
  // Said here, naming the file asked for: the writer would report its temporary name.
  if (auto problem = missing_folder(path)) throw Error(*problem);
  return path + ".tmp-" + std::to_string(::getpid());
}

void commit_file(const std::string& tmp_path, const std::string& path) {
  // Flush the file's blocks before the rename makes it visible under its real name.
  const int fd = ::open(tmp_path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) {  // rename would fail, and say "Success"
    fs::remove(tmp_path, ec);
    throw Error("cannot write '" + path +
                "': a directory of that name is in the way; remove it or choose another name");
  }
  fs::rename(tmp_path, path, ec);
  if (ec) {
    fs::remove(tmp_path, ec);
    throw Error("cannot move the new file into place as '" + path + "': " + ec.message());
  }
  // Persist the directory entry as well.
  const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}


}  // namespace crema::io
