// Errors meant for people: every failure crema reports is one of these, caught in
// app/ and printed as a single line. ConfigError carries the file:line:col and key
// path of the offending config node and maps to exit status 2.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crema {

// Where a config value came from. The file name is shared by every node of a file.
struct Mark {
  std::shared_ptr<const std::string> file;
  int line = 0;  // 1-based; 0 = unknown (e.g. a value set on the command line)
  int col = 0;   // 1-based

  std::string str() const;  // "file:line:col" or "file" or "<command line>"
};

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Training reached a NaN or an infinity. The message already says where training stopped and
// which snapshots are kept, so callers do not add their own account of the stop.
class Diverged : public Error {
 public:
  using Error::Error;
};

// A classifier met a label it cannot take (out of range, not a whole number). `value` is
// that label, so the net can find the sample it came from and add it to the message.
class BadLabel : public Error {
 public:
  // `bottom`: the layer's bottom holding it (a loss's labels are its second; Embed's indices
  // its first), whose data layer the net asks where the sample came from; `noun`: what the
  // value is to that sample ("it is the label of row 3 …").
  BadLabel(const std::string& message, float value, int bottom = 1, std::string noun = "label")
      : Error(message), value_(value), bottom_(bottom), noun_(std::move(noun)) {}
  float value() const { return value_; }
  int bottom() const { return bottom_; }
  const std::string& noun() const { return noun_; }

 private:
  float value_;
  int bottom_;
  std::string noun_;
};

// The host's memory ran out while a net ran. `where` names the layer, the pass and its tops,
// `note` any memory limit in force; the advice between them is by default the usual one
// (smaller batches in the data layers), which a command that sets the batch itself words its
// own way.
class OutOfHostMemory : public Error {
 public:
  OutOfHostMemory(const std::string& where, const std::string& note,
                  const std::string& advice =
                      "reduce batch_size in the data layers (or the input shapes), or use a machine with more memory.")
      : Error(where + "; " + advice + note), where_(where), note_(note) {}
  const std::string& where() const { return where_; }
  const std::string& note() const { return note_; }

 private:
  std::string where_, note_;
};

class ConfigError : public Error {
 public:
  ConfigError(const Mark& mark, const std::string& path, const std::string& message);
  const Mark& mark() const { return mark_; }
  const std::string& path() const { return path_; }

 private:
  Mark mark_;
  std::string path_;
};

// `text` for a message: control characters (a NUL, an escape sequence) written as \xNN, so
// that the one line stays one line and a terminal shows it as it is.
std::string printable(const std::string& text);

// crema's name (Caffe's) for another framework's (PyTorch's `lr`, `Linear`, `kaiming`), or "".
const std::string& caffe_name_for(const std::string& word);

// Closest candidate within a small edit distance, or "" when nothing is close; another
// framework's name for a candidate counts as close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// The pieces of `list` between commas, in order, empty ones included ("a,,b" -> a, "", b;
// "" -> one empty piece): each caller decides whether an empty piece is a mistake, skipped
// or kept as written.
std::vector<std::string> split_commas(const std::string& list);

// The first `shown` of `items` joined by ", ", then " and N more" for the rest, or "none":
// a message that lists names (layers, files, changes) stays one readable line however many.
std::string first_few(const std::vector<std::string>& items, size_t shown);

// `s` single-quoted for a POSIX shell when it needs it: the commands a message prints
// (to resume, to convert) can be pasted as they are.
std::string shell_quote(const std::string& s);

// `text` with ASCII letters in lower case: file extensions, enum spellings and names compared
// without their case (a locale's rules would make a Turkish 'I' differ).
std::string lowercase(std::string text);

}  // namespace crema
