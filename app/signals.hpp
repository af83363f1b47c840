// How crema's long commands (train, convert-imageset, extract-features) answer the signals
// that end or warn a job: stop after the current step (train: with a snapshot), snapshot and
// go on, or nothing —
// Caffe's --sigint_effect/--sighup_effect, for every signal a terminal or a scheduler sends.
// SIGPIPE is ignored: a reader of the log that went away (`| tee` ended by the same Ctrl-C)
// must not kill a run before its snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/solver.hpp"

namespace crema::app {

enum class SignalEffect { stop, snapshot, none };

// Signal number -> effect, for SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 and SIGXCPU. Defaults:
// SIGHUP snapshots, the others stop (SIGUSR1/SIGUSR2/SIGXCPU are the warnings Slurm's
// --signal, SGE and LSF send before a kill; by default they would kill without a snapshot).
using SignalEffects = std::map<int, SignalEffect>;
SignalEffects default_signal_effects();

// Applies items such as "USR1=snapshot" and "sigterm = stop" (names with or without "SIG", any
// case; the command line's comma lists already split); returns what is wrong with them, or ""
// (and leaves `effects` as it was then).
std::string apply_signal_effects(const std::vector<std::string>& items, SignalEffects& effects);
// "SIGUSR1".
std::string signal_name(int sig);

// For every command, first thing in main: the signals above unblocked (a launcher may leave
// them blocked: a stop would never come), SIGXFSZ ignored (a file past `ulimit -f` fails its
// write, which is reported with the file, instead of the signal killing crema mid-snapshot), and
// SIGBUS (a memory-mapped LMDB cut short while read) ends in a line saying so, exit 1.
void install_process_signal_handlers();
// `can_snapshot` false: a command with nothing to snapshot ignores the signals whose effect is
// `snapshot` (SIG_IGN).
void install_signal_handlers(const SignalEffects& effects = default_signal_effects(), bool can_snapshot = true);
// Consumes a pending request; logs the signal that asked for it, once.
Solver::Action poll_signal_action();
// Whether a stop was asked for (consumes nothing).
bool stop_requested();
// A snapshot of iteration `iter` is written in full: a second Ctrl-C, which exits at once
// (status 130), then says so rather than that it leaves none.
void note_snapshot_written(int iter);
// A data layer's clean-up waits for its reader, which may be blocked in a read no signal
// ends (a stalled network file system, a FIFO nobody writes): if the process is still
// running 10 s from now (a thread of its own waits), this logs `outcome` (as an error for a
// non-zero status) and that the reader of data layer `layer` ("" when not known) still
// blocks, and ends the process with `status` without waiting for it.
void exit_past_blocked_reader(int status, const std::string& outcome, const std::string& layer = "");

// While it lives (a command's setup, on the main thread: nets built, data opened, weights
// read), a stop asked for by a signal, or the `deadline` (--time-limit's end, `late` saying
// so), after which setup makes no progress (note_progress: every log line) for 10 s ends the
// process with exit status 1, as exit_past_blocked_reader does: setup is then most likely
// blocked in a read no signal ends (a data file on a stalled network file system, a FIFO with
// no writer), which would hold the job until the scheduler kills it. Nothing was trained yet.
// A thread that cannot be made (a process limit) throws std::system_error.
class SetupWatch {
 public:
  SetupWatch(std::optional<std::chrono::steady_clock::time_point> deadline, std::string late);
  ~SetupWatch();
  SetupWatch(const SetupWatch&) = delete;
  SetupWatch& operator=(const SetupWatch&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A sign of progress for SetupWatch (the log counts each line).
void note_progress();

// What destructors would have done that such an exit must still do (let go of a run's lock
// file, so the next run does not find it left behind): while this object lives, `work` runs
// just before the exit; the object's destructor waits while the exit is under way.
class BeforeForcedExit {
 public:
  explicit BeforeForcedExit(std::function<void()> work);
  ~BeforeForcedExit();
  BeforeForcedExit(const BeforeForcedExit&) = delete;
  BeforeForcedExit& operator=(const BeforeForcedExit&) = delete;
};

}  // namespace crema::app
