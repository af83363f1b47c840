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

// Writes `write(tmp_path)` to a temporary file next to `path`, then fsyncs and renames;
// the temporary is removed if `write` throws.
template <class F>
void write_atomically(const std::string& path, F write);
// write_atomically of `bytes`.
void write_file_atomically(const std::string& path, std::string_view bytes);
// Whether the start of a regular file holds only text (configs) rather than binary
// data (weights, databases): a control byte that no text file has decides. Anything
// but a regular file (a pipe) counts as text, since sniffing would consume it.
bool looks_like_text(const std::string& path);
// Whether `name` ends with `suffix`, letter case aside (MODEL.ONNX, W.CAFFEMODEL.H5).
bool ends_with_nocase(std::string_view name, std::string_view suffix);
// Why `path` cannot be written because its folder does not exist, or nothing.
std::optional<std::string> missing_folder(const std::string& path);
// The names of the regular files in `folder` ("": the current one), in no set order;
// none when it cannot be read.
std::vector<std::string> regular_file_names(const std::string& folder);
// The two halves of write_atomically, for writers that keep a file open for a while.
std::string temp_name_for(const std::string& path);
void commit_file(const std::string& tmp_path, const std::string& path);

template <class F>
void write_atomically(const std::string& path, F write) {
  const std::string tmp = temp_name_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());  // a half-written file must not stay behind
    throw;
  }
  commit_file(tmp, path);
}

}  // namespace crema::io
