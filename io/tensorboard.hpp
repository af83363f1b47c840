// TensorBoard event files, written without TensorFlow or libprotobuf: each record is a
// tensorflow.Event message (event.proto: wall_time 1 double, step 2 int64, file_version 3
// string, summary 5, session_log 7; summary.proto: Summary.value 1 → Value{tag 1,
// simple_value 2}; SessionLog{status 1, START = 1}) in TFRecord framing: the length as
// uint64, its masked CRC-32C, the bytes, their masked CRC-32C, all little-endian.
// Fields are written in field-number order and proto3 defaults (step 0) left out, as
// protobuf serialises, so a record is byte for byte what TensorBoard's own writer makes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crema::io {

// CRC-32C (Castagnoli), and TFRecord's mask of it (rotate right by 15, add 0xa282ead8).
uint32_t crc32c(std::string_view bytes);
uint32_t masked_crc32c(std::string_view bytes);

// The serialized Event messages crema writes.
std::string file_version_event(double wall_time);  // "brain.Event:2": TensorBoard then honours SessionLog
// SessionLog START at `step`: TensorBoard drops every event of this directory at step ≥ `step`
// read before it (the steps a resumed run does again).
std::string session_start_event(double wall_time, int64_t step);
std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& scalars);
// One TFRecord around `data`.
std::string tf_record(std::string_view data);

// Whether `name` is one of crema's events files (as EventFileWriter names them).
bool is_crema_events_file(std::string_view name);

// Rewrites the events file at `path` (atomically, under its name, so it keeps its place in
// the directory's order) without its events at step >= `step` and without a record the file
// ends inside (a kill while writing); removes it when no scalars before `step` are left.
// What a resumed run does to the events the run it replaces wrote after its snapshot, as it
// does to their CSV rows: TensorBoard's default loader ignores SessionLog START. Returns how
// many records it dropped (0: the file is left as it was); throws Error, leaving the file as it
// is, when a record in it is damaged (a checksum fails with all its bytes there).
size_t keep_events_before(const std::string& path, int64_t step);

// A new events file `<dir>/events.out.tfevents.<seconds>.<host>.<pid>.crema` (TensorBoard
// finds files by the "tfevents" in their names); it starts with the version event. Each
// record is flushed as it is written, so TensorBoard shows a running job and a killed one
// loses nothing already written.
class EventFileWriter {
 public:
  EventFileWriter(const std::string& dir, double wall_time);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void write_event(const std::string& event);
  const std::string& path() const { return path_; }
  // The file was removed (or replaced) since it was made.
  bool removed() const;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace crema::io
