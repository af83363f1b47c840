#include "io/lmdb.hpp"

#include <lmdb.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "engine/error.hpp"
#include "engine/math.hpp"
#include "io/files.hpp"

namespace crema::io {

namespace fs = std::filesystem;

namespace {

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view as_view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// LMDB's own message plus what the user can do about the common failures.
std::string explain(int rc, bool reading = false) {
  std::string msg = mdb_strerror(rc);
  if (reading && rc == MDB_BAD_VALSIZE) rc = MDB_CORRUPTED;  // a size read back from a damaged page
  switch (rc) {
    case MDB_INVALID: return msg + "; it is not an LMDB database (crema reads LMDB, not LevelDB)";
    case MDB_VERSION_MISMATCH: return msg + "; it was written by an incompatible LMDB version";
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return msg + "; the database is damaged: create it again";
    case MDB_BAD_VALSIZE: return msg + " (LMDB keys are at most 511 bytes: use shorter image paths)";
    case ENOSPC: return msg + "; free some disk space and run again";
    // LMDB maps the whole database (a reader) or its map size (a writer) into the address
    // space, which a memory limit counts in full.
    case ENOMEM:
      return msg + " (LMDB maps the whole database into memory)." + address_space_limit_note();
    default: return msg;
  }
}

// LMDB checks a page's kind with assertions that abort the process (a page zeroed by an
// interrupted copy fails `IS_LEAF(mp)` in mdb_cursor_next); this callback, run before the
// abort, turns that into the Error a damaged database gives elsewhere. It is thrown through
// LMDB's C frames, which are built with unwind tables (GCC's default on Debian's targets);
// the reader's destructor then ends its transaction and closes the environment.
void damaged_page(MDB_env* env, const char* check) {
  const char* path = nullptr;
  if (mdb_env_get_path(env, &path) != 0 || !path) path = "?";
  throw Error("LMDB '" + std::string(path) + "': a page is damaged (LMDB says: " + check +
              "; a copy cut short or overwritten?); the database is damaged: create it again");
}

}  // namespace

// ---- reading ----------------------------------------------------------------------

void LmdbReader::fail(int rc, const std::string& what) const {
  throw Error("LMDB '" + path_ + "': " + what + ": " + explain(rc, true));
}

bool is_lmdb(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) || starts_as_lmdb(file_head(path, 20));
}

LmdbReader::LmdbReader(const std::string& path) : path_(path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status))
    throw Error("LMDB '" + path + "' does not exist; create one with `crema convert-imageset` (or check data_param.source)");
  unsigned int flags = MDB_RDONLY | MDB_NOTLS;
  if (fs::is_directory(status)) {
    if (!fs::exists(fs::path(path) / "data.mdb")) {
      const bool leveldb = fs::exists(fs::path(path) / "CURRENT");
      throw Error("'" + path + "' holds no data.mdb, so it is not an LMDB database" +
                  (leveldb ? std::string(" (it looks like a LevelDB, which crema does not read: convert the images "
                                         "again with `crema convert-imageset`)")
                           : std::string()));
    }
  } else {
    // A database copied out as a single file. Opening one makes LMDB create "<path>-lock"
    // beside it, so a file that is no database (a mistyped source) is refused first (below),
    // and no lock file is kept: a copied-out database has no writer to coordinate with.
    flags |= MDB_NOSUBDIR | MDB_NOLOCK;
  }
  // LMDB's own word for an empty or foreign data file is "Bad file descriptor" or "Invalid
  // argument": its first page is checked here. An LMDB file starts with a meta page whose
  // magic number follows the 16-byte page header.
  const std::string file = (flags & MDB_NOSUBDIR) ? path : (fs::path(path) / "data.mdb").string();
  if (std::ifstream f(file, std::ios::binary); f.is_open()) {  // else LMDB says why it cannot open it
    const std::string head = file_head(file, 20);
    if (head.empty() && fs::file_size(file, ec) == 0)
      throw Error("LMDB '" + path + "': " + file +
                  " is empty (a copy or a conversion that did not finish?); copy it again or re-create it with "
                  "`crema convert-imageset`");
    if (!starts_as_lmdb(head))
      throw Error("LMDB '" + path + "': not an LMDB database (" + file +
                  " does not start with LMDB's magic number: another format, or damaged from its start; crema reads "
                  "LMDB, not LevelDB" +
                  ((flags & MDB_NOSUBDIR) ? "; for an IDX file set backend: IDX)" : ")"));
  }
  int rc = mdb_env_create(&env_);
  if (rc != 0) fail(rc, "cannot create an LMDB environment");
  mdb_env_set_assert(env_, damaged_page);
  rc = mdb_env_open(env_, path.c_str(), flags, 0664);
  if (rc == EACCES || rc == EROFS) {
    // A read-only location cannot hold the lock file; nobody writes there either.
    mdb_env_close(env_);
    env_ = nullptr;
    rc = mdb_env_create(&env_);
    if (rc == 0) mdb_env_set_assert(env_, damaged_page);
    if (rc == 0) rc = mdb_env_open(env_, path.c_str(), flags | MDB_NOLOCK, 0664);
  }
  if (rc == 0) {
    // LMDB reads through a memory map: a page past the end of a cut-short file is a
    // SIGBUS, not an error code, so the file must hold every page the header names.
    MDB_envinfo info;
    MDB_stat stat;
    const auto size = fs::file_size(file, ec);
    if (!ec && mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &stat) == 0) {
      const auto needed = (static_cast<uintmax_t>(info.me_last_pgno) + 1) * stat.ms_psize;
      if (size < needed) {
        mdb_env_close(env_);
        env_ = nullptr;
        throw Error("LMDB '" + path + "' is truncated: " + file + " has " + std::to_string(size) +
                    " bytes but its pages reach " + std::to_string(needed) +
                    "; copy it again or re-create it with `crema convert-imageset`");
      }
    }
  }
  if (rc == 0) rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_);
  if (rc == 0) rc = mdb_dbi_open(txn_, nullptr, 0, &dbi_);
  if (rc != 0) {
    const std::string reason = explain(rc, true);
    if (txn_) mdb_txn_abort(txn_);
    if (env_) mdb_env_close(env_);
    throw Error("LMDB '" + path + "': cannot open it for reading: " + reason);
  }
}

LmdbReader::~LmdbReader() {
  mdb_txn_abort(txn_);
  mdb_env_close(env_);
}

size_t LmdbReader::count() const {
  MDB_stat stat;
  const int rc = mdb_stat(txn_, dbi_, &stat);
  if (rc != 0) fail(rc, "cannot count its records");
  return stat.ms_entries;
}

std::string LmdbReader::record_name(std::string_view key) const {
  return "LMDB '" + path_ + "' record '" + std::string(key) + "'";
}

std::string_view LmdbReader::get(std::string_view key) const {
  MDB_val k = as_val(key), v;
  const int rc = mdb_get(txn_, dbi_, &k, &v);
  if (rc == MDB_NOTFOUND)
    throw Error("LMDB '" + path_ + "' has no record with key '" + std::string(key) +
                "' (was the database changed while crema read it?)");
  if (rc != 0) fail(rc, "cannot read the record with key '" + std::string(key) + "'");
  return as_view(v);
}

LmdbReader::Cursor::Cursor(const LmdbReader& db) : db_(db) {
  const int rc = mdb_cursor_open(db.txn_, db.dbi_, &cursor_);
  if (rc != 0) db.fail(rc, "cannot open a cursor");
}

LmdbReader::Cursor::~Cursor() { mdb_cursor_close(cursor_); }

bool LmdbReader::Cursor::next() {
  MDB_val k, v;
  const int rc = mdb_cursor_get(cursor_, &k, &v, started_ ? MDB_NEXT : MDB_FIRST);
  started_ = true;
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) db_.fail(rc, "cannot read the next record");
  key_ = as_view(k);
  value_ = as_view(v);
  return true;
}

std::vector<std::string> LmdbReader::keys() const {
  std::vector<std::string> out;
  out.reserve(count());
  Cursor c(*this);
  while (c.next()) out.emplace_back(c.key());
  return out;
}

// ---- writing ----------------------------------------------------------------------

void LmdbWriter::fail(int rc, const std::string& what) const {
  // LMDB passes a failed write's errno through (a full disk can come back as EIO): said with
  // what it means and the space left there.
  const bool disk = rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO;
  const std::string why =
      disk ? std::string(mdb_strerror(rc)) + " (" + write_failure_reason(path_ + "/data.mdb", rc) + ")" : explain(rc);
  throw Error("LMDB '" + path_ + "': " + what + ": " + why);
}

LmdbWriter::LmdbWriter(const std::string& path, size_t batch, size_t initial_map_size)
    : path_(path), batch_(batch > 0 ? batch : 1) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec)))
    throw Error("'" + path + "' already exists; crema does not overwrite a database: remove it or choose another name");
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create the database directory '" + path + "': " + ec.message());
  int rc = mdb_env_create(&env_);
  if (rc == 0) rc = mdb_env_set_mapsize(env_, initial_map_size);
  if (rc == 0) rc = mdb_env_open(env_, path.c_str(), 0, 0664);
  if (rc != 0) {
    const std::string reason = explain(rc);
    if (env_) mdb_env_close(env_);
    throw Error("LMDB '" + path + "': cannot create the database: " + reason);
  }
}

LmdbWriter::~LmdbWriter() { mdb_env_close(env_); }

size_t LmdbWriter::map_size() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

void LmdbWriter::put(std::string key, std::string value) {
  pending_.emplace_back(std::move(key), std::move(value));
  if (pending_.size() >= batch_) commit();
}

void LmdbWriter::commit() {
  if (pending_.empty()) return;
  for (;;) {
    MDB_txn* txn = nullptr;
    MDB_dbi dbi = 0;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) fail(rc, "cannot start a write transaction");
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
    size_t failed = pending_.size();  // the record whose put failed, if one did
    for (size_t i = 0; rc == 0 && i < pending_.size(); ++i) {
      MDB_val k = as_val(pending_[i].first), v = as_val(pending_[i].second);
      rc = mdb_put(txn, dbi, &k, &v, 0);
      if (rc != 0) failed = i;
    }
    if (rc == 0)
      rc = mdb_txn_commit(txn);  // frees the transaction, committed or not
    else
      mdb_txn_abort(txn);
    if (rc == MDB_MAP_FULL) {
      // Caffe's remedy: double the map and write the whole batch again. Allowed
      // here because no transaction of this process is open.
      const size_t bigger = map_size() * 2;
      rc = mdb_env_set_mapsize(env_, bigger);
      if (rc != 0) fail(rc, "cannot grow the map to " + std::to_string(bigger) + " bytes");
      continue;
    }
    if (rc != 0 && failed < pending_.size())
      fail(rc, "cannot store the record with key '" + pending_[failed].first + "'");
    if (rc != 0) fail(rc, "cannot commit " + std::to_string(pending_.size()) + " record(s)");
    break;
  }
  pending_.clear();
}

// ---- drafts -----------------------------------------------------------------------

namespace {
// Drafts of `path` by other processes ("db.partial-PID"): a writer killed outright (SIGKILL, a
// node lost) leaves its draft behind for good. Said, not removed: on a shared file system the
// writer may be alive on another host, where its pid means nothing here.
void warn_other_drafts(const std::string& path) {
  const fs::path final_path(path);
  const fs::path dir = final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  const std::string prefix = final_path.filename().string() + ".partial-";
  const std::string ours = prefix + std::to_string(::getpid());
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name == ours || name.size() == prefix.size() ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
      continue;
    std::error_code size_ec;
    const auto bytes = fs::file_size(it->path() / "data.mdb", size_ec);
    spdlog::warn(
        "'{}' ({:.1f} MiB) is the unfinished database of another writer of '{}' (pid {}), most likely one killed "
        "before it could remove it; remove it unless that writer is still running",
        it->path().string(), size_ec ? 0.0 : static_cast<double>(bytes) / (1 << 20), path, name.substr(prefix.size()));
  }
}
}  // namespace

LmdbDrafts::LmdbDrafts(const std::vector<std::string>& paths) : final_paths_(paths) {
  // "db/" names the folder db: its draft goes beside it ("db.partial-PID"), not into it.
  for (std::string& path : final_paths_)
    while (path.size() > 1 && path.back() == '/') path.pop_back();
  for (const std::string& path : final_paths_) warn_other_drafts(path);
  std::vector<std::string> made;  // drafts this constructor creates, the one that fails included
  try {
    for (const std::string& path : final_paths_) {
      const std::string draft = path + ".partial-" + std::to_string(::getpid());
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(draft, ec))) made.push_back(draft);  // else refused, and not ours
      dbs_.push_back(std::make_unique<LmdbWriter>(draft));
    }
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    dbs_.clear();
    std::error_code ignored;
    for (const std::string& draft : made) fs::remove_all(draft, ignored);
    throw;
  }
}

LmdbDrafts::~LmdbDrafts() {
  if (published_) return;
  for (auto& db : dbs_) {
    const std::string draft = db->path();
    db.reset();  // closes the environment before its directory goes
    std::error_code ignored;
    fs::remove_all(draft, ignored);
  }
}

void LmdbDrafts::publish() {
  std::vector<std::string> drafts;
  for (auto& db : dbs_) {
    db->commit();
    drafts.push_back(db->path());
  }
  dbs_.clear();  // closed, so that the directories can move
  for (size_t k = 0; k < drafts.size(); ++k) {
    std::error_code ec;
    fs::rename(drafts[k], final_paths_[k], ec);
    if (!ec) continue;
    std::error_code ignored;
    for (size_t moved = 0; moved < k; ++moved) fs::remove_all(final_paths_[moved], ignored);
    for (const std::string& draft : drafts) fs::remove_all(draft, ignored);
    throw Error("cannot move the finished LMDB '" + drafts[k] + "' to '" + final_paths_[k] + "': " + ec.message());
  }
  published_ = true;
}

}  // namespace crema::io
