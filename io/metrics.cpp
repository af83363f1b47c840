#include "io/metrics.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "engine/error.hpp"
#include "io/files.hpp"

namespace crema::io {

namespace fs = std::filesystem;

namespace {

// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Empty when the value does not apply; nan and inf spelled as pandas and numpy read them.
std::string csv_number(const std::optional<double>& v) {
  if (!v) return "";
  if (std::isnan(*v)) return "nan";
  if (std::isinf(*v)) return *v > 0 ? "inf" : "-inf";
  // The values are floats (TensorBoard's too): the shortest text that reads back as the same float.
  return fmt::format("{}", static_cast<float>(*v));
}

// How every metrics CSV crema writes begins.
constexpr const char* kHeaderStart = "iter,wall_time";

std::string header_line(const MetricsRow& row) {
  std::string line = kHeaderStart;
  for (const auto& [name, value] : row.values) line += "," + csv_field(name);
  return line + "\n";
}

// Keeps the header and the rows before iteration `iter` of an existing CSV file; a row
// cut short (no line end) goes too.
void keep_rows_before(const std::string& path, int iter) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return;
  const std::string text = read_file_bytes(path);
  std::string kept;
  size_t rows = 0, dropped = 0;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string_view line(text.data() + start, end + 1 - start);
    int row_iter = 0;
    const auto [stop, err] = std::from_chars(line.data(), line.data() + line.size(), row_iter);
    const bool header = start == 0;
    if (header || (err == std::errc() && *stop == ',' && row_iter < iter)) {
      kept += line;
      rows += !header;
    } else {
      ++dropped;
    }
  }
  if (kept == text) return;  // nothing after the snapshot, nothing cut short
  write_file_atomically(path, kept);
  spdlog::info("{}: kept the {} rows before iteration {}; dropped {} the run that was cut short wrote after it", path,
               rows, iter, dropped + (text.back() != '\n'));
}

// The file's first line, '\n' included ("" for an empty file).
std::string first_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (std::getline(in, line) && !in.eof()) line += "\n";
  return line;
}

// Whether a file under a metrics CSV's name is crema's, by its header (or empty, cut short
// before it): a file someone put there under such a name is not a run's to replace, delete or
// move aside.
bool crema_csv(const std::string& path) {
  const std::string first = first_line(path);
  return first.empty() || first.starts_with(kHeaderStart);
}

// "<stem>.until_iter_<N>.csv", or with ".2", ".3", … before ".csv" when that exists.
std::string aside_name(const std::string& csv_path, int iter) {
  const std::string stem = csv_path.substr(0, csv_path.size() - 4) + ".until_iter_" + std::to_string(iter);
  std::error_code ec;
  std::string name = stem + ".csv";
  for (int k = 2; fs::exists(name, ec); ++k) name = stem + "." + std::to_string(k) + ".csv";
  return name;
}

}  // namespace

std::string metrics_csv_path(const std::string& prefix, int test_net) {
  if (test_net < 0) return prefix + ".train.csv";
  return prefix + ".test" + (test_net == 0 ? std::string() : std::to_string(test_net)) + ".csv";
}

std::string tensorboard_dir(const std::string& prefix) { return prefix + ".tensorboard"; }

std::vector<std::string> metrics_files_on_disk(const std::string& prefix) {
  const fs::path dir = fs::path(prefix).parent_path(), events_dir = tensorboard_dir(prefix);
  // <base>.train.csv, <base>.test<k>.csv and their asides, <base>.test.until_iter_<N>[.<k>].csv
  static const std::regex csv(R"(\.(train|test[0-9]*)(\.until_iter_[0-9]+(\.[0-9]+)?)?\.csv)");
  const std::string start = fs::path(prefix).filename().string();
  std::vector<std::string> files;
  for (const std::string& name : regular_file_names(dir.string()))
    if (name.rfind(start, 0) == 0 && std::regex_match(name.substr(start.size()), csv)) {
      if (crema_csv((dir / name).string())) files.push_back((dir / name).string());
    }
  for (const std::string& name : regular_file_names(events_dir.string()))
    if (is_crema_events_file(name)) files.push_back((events_dir / name).string());
  std::sort(files.begin(), files.end());
  return files;
}

MetricsWriter::MetricsWriter(std::string prefix, bool csv, bool tensorboard, int test_nets, int start_iter,
                             bool resumed)
    : prefix_(std::move(prefix)), start_iter_(start_iter) {
  // Nothing here stops the training: a file that cannot be prepared is reported and left out.
  if (csv) {
    for (int k = -1; k < test_nets; ++k) {
      CsvFile f{metrics_csv_path(prefix_, k)};
      try {
        std::error_code ec;
        if (fs::is_regular_file(f.path, ec) && !crema_csv(f.path))
          fail(f.path,
               "a file crema did not write is there (its first line is not crema's 'iter,wall_time,…' header), and "
               "it is left as it is; move it away, or give the run another snapshot_prefix, to have the rows",
               f.failed);
        else if (resumed)
          keep_rows_before(f.path, start_iter);
        else if (fs::is_regular_file(f.path, ec))
          fs::remove(f.path, ec);  // a fresh run's rows start anew, as its snapshots do
      } catch (const std::exception& e) {  // crema's Error, or the file system's
        fail(f.path, e.what(), f.failed);
      }
      csv_.push_back(std::move(f));
    }
  }
  if (tensorboard) {
    // The earlier events: a resumed run cuts them back to its snapshot, a fresh run's start anew.
    const std::string dir = tensorboard_dir(prefix_);
    size_t removed = 0;
    for (const std::string& name : regular_file_names(dir)) {
      if (!is_crema_events_file(name)) continue;
      const std::string path = (fs::path(dir) / name).string();
      try {
        if (!resumed) {
          removed += fs::remove(path);
        } else if (const size_t dropped = keep_events_before(path, start_iter); dropped > 0) {
          spdlog::info(
              "{}: dropped {} record(s) at iteration {} or later (or cut short), which the run that was "
              "cut short wrote after its snapshot",
              path, dropped, start_iter);
        }
      } catch (const std::exception& e) {
        if (resumed)
          spdlog::warn(
              "cannot cut back the TensorBoard events file {}: {}; TensorBoard may show the run that was "
              "cut short beyond iteration {} until this run gets there",
              path, e.what(), start_iter);
        else
          spdlog::warn(
              "cannot remove the earlier run's TensorBoard events file {}: {}; TensorBoard shows its curves "
              "beside this run's",
              path, e.what());
      }
    }
    if (removed > 0)
      spdlog::info("{}: removed the {} events file(s) of an earlier run; this run starts anew", dir, removed);
    const double now = unix_seconds();
    try {
      events_ = std::make_unique<EventFileWriter>(tensorboard_dir(prefix_), now);
      events_->write_event(session_start_event(now, start_iter));
      spdlog::info("TensorBoard events: {} (tensorboard --logdir {})", events_->path(),
                   fs::path(prefix_).parent_path().empty() ? "." : fs::path(prefix_).parent_path().string());
    } catch (const std::exception& e) {
      fail(tensorboard_dir(prefix_), e.what(), events_failed_);
    }
  }
}

void MetricsWriter::announce(bool train_rows, bool test_rows) const {
  std::string paths;
  bool asked = false;  // a file that rows are meant for, even one already said to be left out
  for (size_t slot = 0; slot < csv_.size(); ++slot)
    if (slot == 0 ? train_rows : test_rows) {
      asked = true;
      if (!csv_[slot].failed) paths += (paths.empty() ? "" : ", ") + csv_[slot].path;
    }
  if (!paths.empty())
    spdlog::info("Metrics: {}", paths);
  else if (!csv_.empty() && !asked)
    spdlog::info("Metrics: no CSV rows come in this run (display: 0, and no test_interval)");
}

MetricsWriter::~MetricsWriter() {
  for (CsvFile& f : csv_)
    if (f.file) std::fclose(f.file);
}

void MetricsWriter::fail(const std::string& path, const std::string& why, bool& failed) {
  spdlog::warn("cannot write metrics to {}: {}; no more rows go there, training goes on", path, why);
  failed = true;
}

void MetricsWriter::write_csv(CsvFile& csv, const MetricsRow& row) {
  if (csv.failed) return;
  if (csv.file && !still_at(::fileno(csv.file), csv.path)) {
    // Removed with the run's folder (a clean-up job): rows written to it now would be lost.
    std::fclose(csv.file);
    csv.file = nullptr;
    std::error_code ec;
    fs::create_directories(fs::path(csv.path).parent_path(), ec);
    spdlog::warn("{} was removed during the run; the rows from iteration {} on go to a new one", csv.path, row.iter);
  }
  const std::string header = header_line(row);
  if (!csv.file) {
    std::error_code ec;
    const bool exists = fs::exists(csv.path, ec);
    // Never a FIFO or a device: opening one could block the training.
    if (exists && !fs::is_regular_file(csv.path, ec)) return fail(csv.path, "it is not a regular file", csv.failed);
    // A resumed run appends to its earlier rows when the columns are still the same, in their
    // line ends (a file saved again by a program that writes CRLF keeps them).
    std::string before = exists ? first_line(csv.path) : "";
    csv.line_end = "\n";
    if (before.ends_with("\r\n")) {
      before.erase(before.size() - 2, 1);
      csv.line_end = "\r\n";
    }
    if (exists && before != header) {
      csv.line_end = "\n";  // a new file, written as crema writes them
      if (fs::file_size(csv.path, ec) == 0) {
        fs::remove(csv.path, ec);
      } else {
        const std::string aside = aside_name(csv.path, start_iter_);
        fs::rename(csv.path, aside, ec);
        if (ec) return fail(csv.path, "the columns changed and the earlier rows cannot be moved aside: " + ec.message(), csv.failed);
        spdlog::warn("{}: the columns changed since its earlier rows; those are kept in {}", csv.path, aside);
      }
    }
    const bool append = fs::exists(csv.path, ec);
    csv.file = std::fopen(csv.path.c_str(), append ? "ab" : "wb");
    if (!csv.file || (!append && std::fputs(header.c_str(), csv.file) < 0))
      return fail(csv.path, std::strerror(errno), csv.failed);
  }
  std::string line = std::to_string(row.iter) + "," + fmt::format("{:.3f}", row.wall_time);
  for (const auto& [name, value] : row.values) line += "," + csv_number(value);
  line += csv.line_end;
  if (std::fputs(line.c_str(), csv.file) < 0 || std::fflush(csv.file) != 0)
    fail(csv.path, std::strerror(errno), csv.failed);
}

void MetricsWriter::write(const MetricsRow& row) {
  const size_t slot = static_cast<size_t>(row.test_net + 1);
  if (slot < csv_.size()) write_csv(csv_[slot], row);
  if (events_ && !events_failed_ && events_->removed()) {
    // Removed with the run's folder (a clean-up job): the rows to come go to a new file.
    try {
      events_ = std::make_unique<EventFileWriter>(tensorboard_dir(prefix_), row.wall_time);
      spdlog::warn("the TensorBoard events file was removed during the run; the rows from iteration {} on go to {}",
                   row.iter, events_->path());
    } catch (const std::exception& e) {
      fail(tensorboard_dir(prefix_), e.what(), events_failed_);
    }
  }
  if (events_ && !events_failed_) {
    const std::string group =
        row.test_net < 0 ? "train/" : row.test_net == 0 ? "test/" : "test" + std::to_string(row.test_net) + "/";
    std::vector<std::pair<std::string, float>> scalars;
    for (const auto& [name, value] : row.values)
      if (value) scalars.emplace_back(group + name, static_cast<float>(*value));
    try {
      events_->write_event(scalars_event(row.wall_time, row.iter, scalars));
    } catch (const Error& e) {
      fail(events_->path(), e.what(), events_failed_);
    }
  }
}

}  // namespace crema::io
