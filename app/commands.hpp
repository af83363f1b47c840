// The subcommands: each maps its options onto the engine and io/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "app/signals.hpp"

namespace crema::app {

struct TrainOptions {
  std::string solver;
  std::vector<std::string> weights;
  std::vector<std::string> reinit;  // layers to leave at their fillers despite --weights
  std::string snapshot;
  bool resume = false;     // from the latest snapshot under snapshot_prefix, if there is one
  bool overwrite = false;  // start anew although snapshot_prefix holds an earlier run's snapshots
  std::vector<std::string> stages;  // added to the TRAIN net's state (Caffe's train --stage)
  std::optional<int> level;         // replaces its level (Caffe's train --level)
  std::string time_limit;           // as given; time_limit_s > 0: stop with a snapshot once it has passed
  long long time_limit_s = 0;
  std::vector<std::string> overrides;
  int gpu = -1;
  int threads = 0;  // --threads as given (0: not given), for the commands printed
  SignalEffects signal_effects = default_signal_effects();
};
// Exit status of a run stopped by --time-limit (sysexits' EX_TEMPFAIL: not finished, run
// again with --resume to go on).
constexpr int kExitTimeLimit = 75;
int train(const TrainOptions& opt);

struct TestOptions {
  std::string model;
  std::vector<std::string> weights;
  int iterations = 50;
  std::vector<std::string> overrides;  // --set, applied to the --model file
  int gpu = -1;
  std::vector<std::string> stages;  // added to the TEST net's state (Caffe's --stage)
  std::optional<int> level;         // replaces its level (Caffe's --level)
};
int test(const TestOptions& opt);

// `crema extract-features`, Caffe's extract_features: runs the TEST net as `crema test`
// does and writes the named blobs of every sample, into one HDF5 file (OUT.h5: a
// dataset per blob, one row per sample) or into one LMDB per blob, as Caffe writes
// them (Datums of float_data, keys %010d).
struct ExtractOptions {
  TestOptions net;                   // the net, its weights and --iterations, as for test
  std::vector<std::string> blobs;    // the blobs to write
  std::vector<std::string> outputs;  // one .h5 file, or one new LMDB folder per blob
};
int extract_features(const ExtractOptions& opt);

struct TimeOptions {
  std::string model;
  int iterations = 50;
  std::string phase = "TRAIN";
  int gpu = -1;
  std::string precision;  // fp32, bf16 or tf32; empty: a solver file's own, else fp32
  std::vector<std::string> overrides;  // --set key.path=value
};
int time(const TimeOptions& opt);

std::string version_text();

// Before a net is built (minutes for a large one), not after: a file named on the command line
// (`option`) that does not exist, or is a folder, is a ConfigError saying to give `what`.
void refuse_missing_input(const std::string& option, const std::string& path, const std::string& what);
// Every --weights file, so.
void refuse_missing_weights(const std::vector<std::string>& weights);

}  // namespace crema::app
