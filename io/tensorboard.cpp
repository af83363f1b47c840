#include "io/tensorboard.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/error.hpp"
#include "io/files.hpp"
#include "io/protobuf_wire.hpp"

namespace crema::io {

namespace fs = std::filesystem;

namespace {

// Byte-wise table of the reflected Castagnoli polynomial 0x82f63b78.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Event fields (tensorflow/core/util/event.proto).
constexpr uint32_t kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5, kSessionLog = 7;
constexpr uint32_t kSummaryValue = 1, kValueTag = 1, kValueSimple = 2;  // summary.proto
constexpr uint32_t kSessionStatus = 1, kSessionStart = 1;

pb::Writer event_header(double wall_time, int64_t step) {
  pb::Writer event;
  event.fixed64_double(kWallTime, wall_time);
  if (step != 0) event.varint(kStep, static_cast<uint64_t>(step));  // proto3 leaves the default out
  return event;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) c = kCrc32cTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string file_version_event(double wall_time) {
  pb::Writer event = event_header(wall_time, 0);
  event.bytes(kFileVersion, "brain.Event:2");
  return event.take();
}

std::string session_start_event(double wall_time, int64_t step) {
  pb::Writer log;
  log.varint(kSessionStatus, kSessionStart);
  pb::Writer event = event_header(wall_time, step);
  event.bytes(kSessionLog, log.str());
  return event.take();
}

std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& scalars) {
  pb::Writer summary;
  for (const auto& [tag, value] : scalars) {
    pb::Writer v;
    v.bytes(kValueTag, tag);
    v.fixed32_float(kValueSimple, value);
    summary.bytes(kSummaryValue, v.str());
  }
  pb::Writer event = event_header(wall_time, step);
  event.bytes(kSummary, summary.str());
  return event.take();
}

namespace {
// TFRecord's integers are little-endian whatever the host.
template <class T>
std::string little_endian(T v) {
  std::string out(sizeof v, '\0');
  for (size_t i = 0; i < sizeof v; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
  return out;
}
template <class T>
T from_little_endian(std::string_view bytes) {  // sizeof(T) bytes
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return static_cast<T>(v);
}
}  // namespace

std::string tf_record(std::string_view data) {
  const std::string length = little_endian(static_cast<uint64_t>(data.size()));
  return length + little_endian(masked_crc32c(length)) + std::string(data) + little_endian(masked_crc32c(data));
}

namespace {
constexpr std::string_view kEventsStem = "events.out.tfevents.", kEventsSuffix = ".crema";
}  // namespace

bool is_crema_events_file(std::string_view name) {
  return name.size() > kEventsStem.size() + kEventsSuffix.size() && name.substr(0, kEventsStem.size()) == kEventsStem &&
         name.substr(name.size() - kEventsSuffix.size()) == kEventsSuffix;
}

size_t keep_events_before(const std::string& path, int64_t step) {
  const std::string bytes = read_file_bytes(path);
  const auto damaged = [&](size_t at, const std::string& what) {
    // Not a kill's cut: the rest may hold good events, so nothing is rewritten.
    return Error("'" + path + "' is damaged at byte " + std::to_string(at) + " (" + what + "); it is left as it is");
  };
  std::string kept;
  size_t dropped = 0, scalars_kept = 0;
  bool cut_short = false;
  for (size_t at = 0; at < bytes.size();) {
    // length (8), its masked CRC (4), the event, its masked CRC (4)
    const std::string_view rest(bytes.data() + at, bytes.size() - at);
    if (rest.size() < 12) {
      cut_short = true;
      break;
    }
    if (from_little_endian<uint32_t>(rest.substr(8, 4)) != masked_crc32c(rest.substr(0, 8)))
      throw damaged(at, "a record's length fails its checksum");
    const uint64_t length = from_little_endian<uint64_t>(rest.substr(0, 8));
    if (length > rest.size() - 12 || rest.size() - 12 - length < 4) {  // the file ends inside the record
      cut_short = true;
      break;
    }
    const std::string_view event = rest.substr(12, length);
    if (from_little_endian<uint32_t>(rest.substr(12 + length, 4)) != masked_crc32c(event))
      throw damaged(at, "a record's event fails its checksum");
    int64_t event_step = 0;
    bool summary = false;
    try {
      pb::Reader reader(path, event, "Event");
      while (reader.next()) {
        if (reader.field() == kStep) {
          event_step = reader.read_int64();
        } else {
          summary = summary || reader.field() == kSummary;
          reader.skip();
        }
      }
    } catch (const pb::WireError& e) {
      throw damaged(at, e.what());
    }
    const size_t size = 16 + static_cast<size_t>(length);
    if (event_step < step) {
      kept.append(rest.substr(0, size));
      scalars_kept += summary;
    } else {
      ++dropped;
    }
    at += size;
  }
  if (dropped == 0 && !cut_short) return 0;
  if (scalars_kept == 0) {
    fs::remove(path);
  } else {
    // Not "<name>.tmp-PID": TensorBoard reads every file with "tfevents" in its name.
    write_file_atomically(path, kept,
                          (fs::path(path).parent_path() / (".cut-back.tmp-" + std::to_string(::getpid()))).string());
  }
  return dropped + cut_short;
}

EventFileWriter::EventFileWriter(const std::string& dir, double wall_time) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // TensorBoard reads a directory's files in name order, and a resumed run's SessionLog
  // START must come after the events it replaces: the seconds in the name go past every
  // events file already there (a run that starts within the same second as the last).
  long long seconds = static_cast<long long>(std::floor(wall_time));
  const std::string stem(kEventsStem);
  for (const std::string& name : regular_file_names(dir)) {
    long long t = 0;
    if (name.rfind(stem, 0) == 0 &&
        std::from_chars(name.data() + stem.size(), name.data() + name.size(), t).ec == std::errc())
      seconds = std::max(seconds, t + 1);
  }
  path_ = (fs::path(dir) / (stem + std::to_string(seconds) + "." + host_name() + "." + std::to_string(::getpid()) +
                            std::string(kEventsSuffix)))
              .string();
  file_ = std::fopen(path_.c_str(), "wbx");  // never over an existing file
  if (!file_)
    throw Error("cannot create the TensorBoard events file '" + path_ + "': " + std::strerror(errno) +
                "; set snapshot_prefix to a writable directory, or leave tensorboard out of the solver's metrics");
  write_event(file_version_event(wall_time));
}

EventFileWriter::~EventFileWriter() {
  if (file_) std::fclose(file_);
}

bool EventFileWriter::removed() const { return !still_at(::fileno(file_), path_); }

void EventFileWriter::write_event(const std::string& event) {
  const std::string record = tf_record(event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0)
    throw Error("cannot write to the TensorBoard events file '" + path_ + "': " + std::strerror(errno));
}

}  // namespace crema::io
