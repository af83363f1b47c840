// The training metrics files, written beside the snapshots from Solver::on_metrics rows
// (README, *Metrics*):
//   <prefix>.train.csv     a row per display: iter, wall_time, then the row's values
//   <prefix>.test.csv      a row per test pass of test net #0 (<prefix>.test1.csv for #1, …)
//   <prefix>.tensorboard/  an events file per run: train/<name>, test/<name> (test1/<name>, …)
// A fresh run starts the CSV files anew. A run resumed at iteration N keeps the rows
// before N and drops the others: they were written after the snapshot by the run that
// was cut short, and the resumed run writes them again. TensorBoard learns the same from
// a SessionLog START at step N, which makes it drop that directory's older events at
// steps ≥ N.
// Rows are written and flushed as they come, so a killed job keeps every row it
// printed. A failed write (a full disk) is reported once and ends the metrics, not the
// training.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/solver.hpp"
#include "io/tensorboard.hpp"

namespace crema::io {

std::string metrics_csv_path(const std::string& prefix, int test_net);  // test_net −1: the training rows
std::string tensorboard_dir(const std::string& prefix);
// The metrics files runs wrote under `prefix`: its CSV files (those moved aside included)
// and the events files crema wrote in its TensorBoard folder.
std::vector<std::string> metrics_files_on_disk(const std::string& prefix);

class MetricsWriter {
 public:
  // `start_iter`: the iteration training starts at; `resumed`: it continues a snapshot.
  MetricsWriter(std::string prefix, bool csv, bool tensorboard, int test_nets, int start_iter, bool resumed);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(const MetricsRow& row);
  // Logs the CSV files that will get rows: the training rows' with `train_rows` (display is
  // on), the test nets' with `test_rows` (a test_interval).
  void announce(bool train_rows, bool test_rows) const;

 private:
  struct CsvFile {
    std::string path;
    std::FILE* file = nullptr;  // opened at the first row, when the columns are known
    bool failed = false;
    const char* line_end = "\n";  // "\r\n" when appending to rows saved that way (a spreadsheet on Windows)
  };
  void write_csv(CsvFile& csv, const MetricsRow& row);
  void fail(const std::string& path, const std::string& why, bool& failed);

  std::string prefix_;
  int start_iter_;
  std::vector<CsvFile> csv_;  // [0] training rows, [1 + k] test net #k
  std::unique_ptr<EventFileWriter> events_;
  bool events_failed_ = false;
};

}  // namespace crema::io
