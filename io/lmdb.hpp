// Caffe's LMDB databases (a directory holding data.mdb and lock.mdb; keys and
// values are byte strings, values usually serialised Datums), through the LMDB C
// library. Read-only access for the data layer and compute-mean: count, a cursor
// in key order (byte order, as LMDB sorts), and random access by key. A writer for
// convert-imageset that commits in batches, as Caffe's does, and doubles the map
// size whenever LMDB reports the map full. Every error names the database path and
// says what to do.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// From lmdb.h, which only io/lmdb.cpp includes.
struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace crema::io {

// Whether `path` is an LMDB database: a directory, or a single data file (data.mdb copied
// out) whose first page carries LMDB's magic number.
bool is_lmdb(const std::string& path);

class LmdbReader {
 public:
  // Opens the database at `path` (a directory, or a single data file) read-only.
  // A read-only location (no lock file can be made) is opened without locking.
  explicit LmdbReader(const std::string& path);
  ~LmdbReader();
  LmdbReader(const LmdbReader&) = delete;
  LmdbReader& operator=(const LmdbReader&) = delete;

  const std::string& path() const { return path_; }
  size_t count() const;
  // "LMDB '<path>' record '<key>'", for errors about one record.
  std::string record_name(std::string_view key) const;

  // The value stored under `key`: a view of the database's memory, valid while this
  // reader lives. Throws Error naming the database and the key when it is absent.
  std::string_view get(std::string_view key) const;

  // Walks the records in key order: `while (c.next()) use(c.key(), c.value());`.
  class Cursor {
   public:
    explicit Cursor(const LmdbReader& db);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    bool next();  // the first record on the first call; false past the last
    std::string_view key() const { return key_; }
    std::string_view value() const { return value_; }

   private:
    const LmdbReader& db_;
    MDB_cursor* cursor_ = nullptr;
    bool started_ = false;
    std::string_view key_, value_;
  };

  std::vector<std::string> keys() const;  // every key, in order

 private:
  [[noreturn]] void fail(int rc, const std::string& what) const;
  std::string path_;
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;  // one read transaction: a consistent snapshot for the reader's life
  unsigned int dbi_ = 0;
};

class LmdbWriter {
 public:
  static constexpr size_t kDefaultBatch = 1000;           // records per transaction, as Caffe
  static constexpr size_t kDefaultMapSize = size_t{1} << 26;  // 64 MiB to start; doubled when full

  // Creates a new database in the directory `path`, which must not exist yet (its
  // parent directories are created).
  explicit LmdbWriter(const std::string& path, size_t batch = kDefaultBatch, size_t initial_map_size = kDefaultMapSize);
  ~LmdbWriter();  // records put since the last commit() are dropped: call commit()
  LmdbWriter(const LmdbWriter&) = delete;
  LmdbWriter& operator=(const LmdbWriter&) = delete;

  // Buffers one record (a later put of the same key replaces it); commits every
  // `batch` records.
  void put(std::string key, std::string value);
  // Writes the buffered records in one transaction.
  void commit();
  size_t map_size() const;
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(int rc, const std::string& what) const;
  std::string path_;
  size_t batch_;
  MDB_env* env_ = nullptr;
  std::vector<std::pair<std::string, std::string>> pending_;
};

// New databases written under temporary names beside their final ones
// (NAME.partial-PID) and moved into place together by publish(), so that an
// interrupted writer (a signal, a full disk, an error) never leaves a partial
// database under a name users read. Destroyed unpublished, the drafts are removed.
class LmdbDrafts {
 public:
  explicit LmdbDrafts(const std::vector<std::string>& paths);  // the final paths
  ~LmdbDrafts();
  LmdbDrafts(const LmdbDrafts&) = delete;
  LmdbDrafts& operator=(const LmdbDrafts&) = delete;

  LmdbWriter& operator[](size_t k) { return *dbs_[k]; }
  // Commits and closes every database, then moves each to its final path: all or
  // none (one moved before a later move failed is removed again).
  void publish();

 private:
  std::vector<std::string> final_paths_;
  std::vector<std::unique_ptr<LmdbWriter>> dbs_;  // each at its draft path
  bool published_ = false;
};

}  // namespace crema::io
