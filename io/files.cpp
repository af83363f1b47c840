#include "io/files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/error.hpp"

namespace crema::io {

namespace fs = std::filesystem;

std::string read_file_bytes(const std::string& path) {
  // A folder opens as a stream on Linux; its first read fails (libstdc++ throws from underflow).
  if (std::error_code ec; fs::is_directory(path, ec)) throw Error("cannot read '" + path + "': it is a folder");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : ENOENT));
  try {
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : EIO));
    return bytes;
  } catch (const std::ios_base::failure&) {  // a read error the stream buffer reports by throwing
    throw Error("cannot read '" + path + "': " + std::strerror(errno ? errno : EIO));
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& tmp_name) {
  write_atomically(
      path,
      [&](const std::string& tmp) {
        std::FILE* file = std::fopen(tmp.c_str(), "wb");
        bool ok = file && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
        if (file) ok = std::fclose(file) == 0 && ok;
        if (!ok) throw Error("cannot write '" + path + "': " + std::strerror(errno ? errno : EIO));
      },
      tmp_name);
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

bool starts_as_hdf5(std::string_view head) { return head.substr(0, 8) == std::string_view("\x89HDF\r\n\x1a\n", 8); }
bool starts_as_png(std::string_view head) { return head.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8); }
bool starts_as_jpeg(std::string_view head) { return head.substr(0, 3) == "\xff\xd8\xff"; }
bool starts_as_lmdb(std::string_view head) { return head.size() >= 20 && head.substr(16, 4) == "\xde\xc0\xef\xbe"; }

std::string resolved_path(const std::string& path) {
  std::error_code failed;
  const fs::path p = fs::weakly_canonical(path, failed);
  return (failed ? fs::absolute(path, failed).lexically_normal() : p).string();
}

std::string file_head(const std::string& path, size_t n) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  std::ifstream in(path, std::ios::binary);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head;
}

std::string what_is(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "data.mdb", ec)) return "an LMDB database";
    if (fs::exists(fs::path(path) / "CURRENT", ec)) return "a LevelDB database";
    return "a folder";
  }
  const std::string h = file_head(path, 20);
  if (starts_as_hdf5(h)) return "an HDF5 file";
  if (starts_as_lmdb(h)) return "an LMDB database";
  if (starts_as_png(h) || starts_as_jpeg(h)) return "an image";
  // IDX: two zero bytes, the type code (unsigned byte … double), then the number of axes.
  const auto* head = reinterpret_cast<const unsigned char*>(h.data());
  if (h.size() >= 4 && head[0] == 0 && head[1] == 0 && (head[2] == 0x08 || (head[2] >= 0x09 && head[2] <= 0x0e)) &&
      head[3] >= 1 && head[3] <= 4)
    return "an IDX file";
  if (!h.empty() && looks_like_text(path)) return "a text file";
  return "";
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

std::optional<unsigned long long> free_bytes(const std::string& folder) {
  struct statvfs space {};
  if (::statvfs(folder.empty() ? "." : folder.c_str(), &space) != 0) return std::nullopt;
  return static_cast<unsigned long long>(space.f_bavail) * space.f_frsize;
}

std::string write_failure_reason(const std::string& path, int error_number) {
  std::string why;
  switch (error_number) {
    case ENOSPC:
      why = "the disk is full";
      break;
    case EDQUOT:
      why = "the disk quota is used up";
      break;
    case EFBIG:
      why = "the file grew past the size this process may write (ulimit -f)";
      break;
    case EIO:
      why = "the device reported an input/output error";
      break;
    case EROFS:
      why = "the file system is read-only";
      break;
    default:
      why = "a full disk or a used-up quota?";
  }
  if (const auto left = free_bytes(fs::path(path).parent_path().string())) {
    char free_text[64];
    std::snprintf(free_text, sizeof free_text, "%.1f MiB", static_cast<double>(*left) / (1 << 20));
    why += std::string("; ") + free_text + " free there";
  }
  return why;
}

namespace {
// Why the rename that completes a write must not replace what is at `path`, or nothing: a
// device, a FIFO or a socket there would be replaced by a plain file (`-o /dev/null` run as root
// would remove the null device). A folder is refused by commit_file.
std::string directory_in_the_way(const std::string& path) {
  return "cannot write '" + path + "': a directory of that name is in the way; remove it or choose another name";
}

std::optional<std::string> not_replaceable(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st) || fs::is_regular_file(st) || fs::is_directory(st)) return std::nullopt;
  const char* what = fs::is_character_file(st) || fs::is_block_file(st) ? "a device"
                     : fs::is_fifo(st)                                  ? "a FIFO"
                     : fs::is_socket(st)                                ? "a socket"
                                                                        : "not a regular file";
  return "cannot write '" + path + "': it is " + what +
         ", and crema writes a new file and renames it into place, which would replace it; give the path of a "
         "file";
}
}  // namespace

std::string temp_name_for(const std::string& path) {
  // Said here, naming the file asked for: the writer would report its temporary name.
  if (auto problem = missing_folder(path)) throw Error(*problem);
  if (auto problem = not_replaceable(path)) throw Error(*problem);
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(directory_in_the_way(path));
  return path + ".tmp-" + std::to_string(::getpid());
}

std::optional<std::string> temp_name_target(const std::string& name) {
  const size_t tmp = name.rfind(".tmp-");
  if (tmp == std::string::npos || tmp + 5 == name.size() ||
      name.find_first_not_of("0123456789", tmp + 5) != std::string::npos)
    return std::nullopt;
  return name.substr(0, tmp);
}

void commit_file(const std::string& tmp_path, const std::string& path, bool keep_tmp_on_failure) {
  // Flush the file's blocks before the rename makes it visible under its real name.
  const int fd = ::open(tmp_path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  const auto fail = [&](const std::string& why) {
    if (!keep_tmp_on_failure) fs::remove(tmp_path, ec);
    throw Error(why);
  };
  if (auto problem = not_replaceable(path)) fail(*problem);          // made there since temp_name_for looked
  if (fs::is_directory(path, ec)) fail(directory_in_the_way(path));  // rename would fail, and say "Success"
  fs::rename(tmp_path, path, ec);
  if (ec) fail("cannot move the new file into place as '" + path + "': " + ec.message());
  // Persist the directory entry as well.
  const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

bool still_at(int fd, const std::string& path) {
  struct stat open_file {
  }, now{};
  return ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &now) == 0 && open_file.st_dev == now.st_dev &&
         open_file.st_ino == now.st_ino;
}

namespace {
std::string read_holder(int fd) {
  char text[1024] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : "";
  while (!holder.empty() && std::isspace(static_cast<unsigned char>(holder.back()))) holder.pop_back();
  return holder;
}
}  // namespace

FileLock::FileLock(std::string path, const std::string& holder) : path_(std::move(path)) { take(holder); }

void FileLock::take_again(const std::string& holder) {
  if (fd_ >= 0) ::close(fd_);  // not release(): the file at the path now is not this lock's
  fd_ = -1;
  state_ = State::unsupported;
  holder_found_.clear();
  why_.clear();
  left_by_.clear();
  take(holder);
}

void FileLock::take(const std::string& holder) {
  // A holder removes the file as it lets go: a lock taken on a file that was removed (or
  // replaced) meanwhile guards nothing, so it is taken again on the file now at the path.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EACCES)
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);  // another user's: flock works read-only
    if (fd < 0) {
      why_ = std::strerror(errno);
      return;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const bool removed = !still_at(fd, path_);  // its holder is letting go: try the next one
      if (err == EWOULDBLOCK && !removed) {
        holder_found_ = read_holder(fd);
        state_ = State::taken;
      } else if (err != EWOULDBLOCK) {
        why_ = std::strerror(err);  // ENOLCK, EOPNOTSUPP: a file system without locks
      }
      ::close(fd);
      if (err == EWOULDBLOCK && removed) {
        ::usleep(10000);
        continue;
      }
      return;
    }
    if (still_at(fd, path_)) {
      fd_ = fd;
      state_ = State::held;
      left_by_ = read_holder(fd);  // a killed run's line: the kernel let go of its lock
      // Who holds it is a courtesy to whoever finds it taken: the lock holds without it.
      if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, holder.data(), holder.size(), 0);
      return;
    }
    ::close(fd);
  }
  why_ = "the lock file keeps being replaced";
}

void FileLock::release() {
  if (fd_ < 0) return;
  // While still holding it (a waiter then finds the file gone and tries the next), and only
  // if it is still ours: one made anew at the path meanwhile is another run's.
  if (still_at(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace crema::io
