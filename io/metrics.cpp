#include "io/metrics.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.hpp"
#include "io/checkpoint.hpp"

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

std::string header_line(const MetricsRow& row) {
  std::string line = "iter,wall_time";
  for (const auto& [name, value] : row.values) line += "," + csv_field(name);
  return line + "\n";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The complete lines ('\n'-terminated; a row cut short by a kill is not one).
std::vector<std::string> complete_lines(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end + 1 - start));
  return lines;
}

// Keeps the header and the rows before iteration `iter` of an existing CSV file.
void keep_rows_before(const std::string& path, int iter) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return;
  const std::string text = read_text(path);
  const std::vector<std::string> lines = complete_lines(text);
  std::string kept;
  size_t rows = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    int row_iter = 0;
    const auto [end, err] = std::from_chars(lines[i].data(), lines[i].data() + lines[i].size(), row_iter);
    if (i == 0 || (err == std::errc() && *end == ',' && row_iter < iter)) {
      kept += lines[i];
      rows += i > 0;
    }
  }
  if (kept == text) return;  // nothing after the snapshot, nothing cut short
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    if (!out.flush()) throw Error("cannot rewrite the metrics file '" + path + "': " + std::strerror(errno));
  });
  spdlog::info("{}: kept the {} rows before iteration {}; {} after it came from the run that was cut short", path,
               rows, iter, lines.size() - (rows + (lines.empty() ? 0 : 1)));
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string metrics_csv_path(const std::string& prefix, int test_net) {
  if (test_net < 0) return prefix + ".train.csv";
  return prefix + ".test" + (test_net == 0 ? std::string() : std::to_string(test_net)) + ".csv";
}

std::string tensorboard_dir(const std::string& prefix) { return prefix + ".tensorboard"; }

MetricsWriter::MetricsWriter(std::string prefix, bool csv, bool tensorboard, int test_nets, int start_iter,
                             bool resumed)
    : prefix_(std::move(prefix)), start_iter_(start_iter) {
  if (csv) {
    for (int k = -1; k < test_nets; ++k) {
      CsvFile f{metrics_csv_path(prefix_, k)};
      std::error_code ec;
      if (resumed)
        keep_rows_before(f.path, start_iter);
      else
        fs::remove(f.path, ec);  // a fresh run's rows start anew, as its snapshots do
      csv_.push_back(std::move(f));
    }
    std::string paths;
    for (const CsvFile& f : csv_) paths += (paths.empty() ? "" : ", ") + f.path;
    spdlog::info("Metrics: {}", paths);
  }
  if (tensorboard) {
    const double now = unix_seconds();
    events_ = std::make_unique<EventFileWriter>(tensorboard_dir(prefix_), now);
    events_->write_event(session_start_event(now, start_iter));
    spdlog::info("TensorBoard events: {} (tensorboard --logdir {})", events_->path(),
                 fs::path(prefix_).parent_path().empty() ? "." : fs::path(prefix_).parent_path().string());
  }
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
  const std::string header = header_line(row);
  if (!csv.file) {
    // A resumed run appends to its earlier rows when the columns are still the same.
    std::error_code ec;
    if (fs::is_regular_file(csv.path, ec)) {
      const std::vector<std::string> lines = complete_lines(read_text(csv.path));
      if (lines.empty() || lines[0] != header) {
        std::string aside = csv.path.substr(0, csv.path.size() - 4) + ".until_iter_" + std::to_string(start_iter_) + ".csv";
        fs::rename(csv.path, aside, ec);
        spdlog::warn("{}: the columns changed since its earlier rows; those are kept in {}", csv.path, aside);
      }
    }
    const bool append = fs::exists(csv.path, ec);
    csv.file = std::fopen(csv.path.c_str(), append ? "ab" : "wb");
    if (!csv.file || (!append && std::fputs(header.c_str(), csv.file) < 0)) return fail(csv.path, std::strerror(errno), csv.failed);
  }
  std::string line = std::to_string(row.iter) + "," + fmt::format("{:.3f}", row.wall_time);
  for (const auto& [name, value] : row.values) line += "," + csv_number(value);
  line += "\n";
  if (std::fputs(line.c_str(), csv.file) < 0 || std::fflush(csv.file) != 0) fail(csv.path, std::strerror(errno), csv.failed);
}

void MetricsWriter::write(const MetricsRow& row) {
  const size_t slot = static_cast<size_t>(row.test_net + 1);
  if (slot < csv_.size()) write_csv(csv_[slot], row);
  if (events_ && !events_failed_) {
    const std::string group = row.test_net < 0 ? "train/" : row.test_net == 0 ? "test/" : "test" + std::to_string(row.test_net) + "/";
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
