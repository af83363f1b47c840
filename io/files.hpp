// Whole files: read at once, and written so that an interrupted write (a kill, a full
// disk, a crash) never leaves a broken file under the real name — checkpoints,
// converted configs, exported models and the metrics a resumed run rewrites.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crema::io {

// The file's bytes; throws Error naming it when it cannot be read.
std::string read_file_bytes(const std::string& path);

// Writes `write(tmp_path)` to a temporary file next to `path` (`tmp`, or temp_name_for(path)),
// then fsyncs and renames; the temporary is removed if `write` throws.
template <class F>
void write_atomically(const std::string& path, F write, std::string tmp = {});
// write_atomically of `bytes`.
void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& tmp = {});
// Whether the start of a regular file holds only text (configs) rather than binary
// data (weights, databases): a control byte that no text file has decides. Anything
// but a regular file (a pipe) counts as text, since sniffing would consume it.
bool looks_like_text(const std::string& path);
// Formats' signatures, tested on a file's first bytes (what file_head returns, or the whole
// file): each is false on bytes too short to hold it.
bool starts_as_hdf5(std::string_view head);
bool starts_as_png(std::string_view head);
bool starts_as_jpeg(std::string_view head);
// LMDB's data file opens with a meta page: a 16-byte page header, then MDB_MAGIC stored in
// the machine's (little-endian) order — 20 bytes.
bool starts_as_lmdb(std::string_view head);
// Up to `n` first bytes of a regular file; none for anything else (a pipe's bytes would be
// consumed, and a FIFO without a writer would block) or when it cannot be read.
std::string file_head(const std::string& path, size_t n);
// One spelling for one file (./db, a link, a folder named twice), existing or not: the path
// with its links resolved, or lexically normalised where it cannot be resolved.
std::string resolved_path(const std::string& path);
// What `path` holds, told by its first bytes (or a folder's files), for messages refusing a
// source of another kind: "an LMDB database", "a LevelDB database", "an HDF5 file", "an IDX
// file", "an image", "a text file", "a folder"; "" when it does not exist, cannot be read, is
// not a regular file or folder (a pipe is not read), or is none of these.
std::string what_is(const std::string& path);
// Whether `name` ends with `suffix`, letter case aside (MODEL.ONNX, W.CAFFEMODEL.H5).
bool ends_with_nocase(std::string_view name, std::string_view suffix);
// Why `path` cannot be written because its folder does not exist, or nothing.
std::optional<std::string> missing_folder(const std::string& path);
// The names of the regular files in `folder` ("": the current one), in no set order;
// none when it cannot be read.
std::vector<std::string> regular_file_names(const std::string& folder);
// Bytes an unprivileged process may still write in the file system holding `folder` ("":
// the current one); nothing when it cannot be told.
std::optional<unsigned long long> free_bytes(const std::string& folder);
// Why a write into `path` failed, for a message: the system's reason for `error_number` (the
// errno the failed write left) where it is one a full or limited disk gives, else a guess,
// then the space left in the file system of the file's folder.
std::string write_failure_reason(const std::string& path, int error_number);
// The two halves of write_atomically, for writers that keep a file open for a while.
std::string temp_name_for(const std::string& path);
// The name a temp_name_for name stands for (`name` without its ".tmp-PID"), or nothing when
// `name` is not one: how a later run recognises what a killed writer left.
std::optional<std::string> temp_name_target(const std::string& name);
// A failure removes the temporary file unless `keep_tmp_on_failure` (when it holds what exists
// nowhere else, as an output layer's rows).
void commit_file(const std::string& tmp_path, const std::string& path, bool keep_tmp_on_failure = false);
// Whether `fd` is the file now at `path`: false once the file was removed (a clean-up job
// emptying the run's folder) or replaced since it was opened.
bool still_at(int fd, const std::string& path);

// An exclusive advisory lock (flock) on `path`, made if need be, held while the object lives.
// The kernel releases it when the process ends however it ends, so a killed holder leaves no
// stale lock on a local file system (NFSv3 keeps a crashed host's locks until it returns; some
// cluster file systems' flock is per node). The file holds `holder` (who took it, for whoever
// finds it taken) and is removed when the lock is let go.
class FileLock {
 public:
  enum class State {
    held,         // this process has it
    taken,        // another has it: holder_found() says who
    unsupported,  // the file system has no locks, or the file cannot be made (why())
  };
  FileLock(std::string path, const std::string& holder);
  ~FileLock() { release(); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  State state() const { return state_; }
  const std::string& holder_found() const { return holder_found_; }
  const std::string& why() const { return why_; }
  const std::string& path() const { return path_; }
  // held: what the file said when this process took it ("" if it was new), i.e. who left it
  // without letting go (a run killed outright).
  const std::string& left_by() const { return left_by_; }
  // Lets go now, as the destructor does (once): for an exit that runs no destructors.
  void release();
  // Held, but its file is no longer at the path (removed with the run's folder): the lock
  // then keeps no other run out.
  bool lost() const { return state_ == State::held && !still_at(fd_, path_); }
  // Lets go of a lost lock and takes one on a new file at the path; state() says how it went
  // (taken: another run made it meanwhile).
  void take_again(const std::string& holder);

 private:
  void take(const std::string& holder);
  std::string path_;
  int fd_ = -1;
  State state_ = State::unsupported;
  std::string holder_found_, why_, left_by_;
};

template <class F>
void write_atomically(const std::string& path, F write, std::string tmp) {
  if (tmp.empty()) tmp = temp_name_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());  // a half-written file must not stay behind
    throw;
  }
  commit_file(tmp, path);
}

}  // namespace crema::io
