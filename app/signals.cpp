#include "app/signals.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace crema::app {

namespace {
// Written before the handlers are installed, read by them.
volatile sig_atomic_t g_effect[NSIG];
std::atomic<int> g_stops{0};
std::atomic<int> g_interrupts{0};       // SIGINTs that stopped: the second exits at once
std::atomic<int> g_stop_signal{0};      // the signal of the first stop
std::atomic<int> g_snapshot_signal{0};  // a pending snapshot's signal
std::atomic<bool> g_stop_logged{false};
std::atomic<int> g_written_iter{-1};  // the iteration of the latest snapshot written in full, -1: none
// Whether a first Ctrl-C is answered at once on the terminal: the stop is said when the
// current step ends, seconds later with a large batch, and a second press in between
// would end the run without its snapshot.
volatile sig_atomic_t g_answer_interrupt = 0;

// BeforeForcedExit's work, by object. Made once and never destroyed: the forced exit's thread
// may run while the main thread's exit destroys static objects. The lock is held from the
// work to _exit.
std::mutex& forced_exit_mutex() {
  static auto* mutex = new std::mutex;
  return *mutex;
}
std::map<const void*, std::function<void()>>& forced_exit_work() {
  static auto* work = new std::map<const void*, std::function<void()>>;
  return *work;
}

const std::pair<int, const char*> kSignals[] = {{SIGINT, "SIGINT"},   {SIGTERM, "SIGTERM"}, {SIGHUP, "SIGHUP"},
                                                {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}};

void on_signal(int sig) {
  if (g_effect[sig] == static_cast<sig_atomic_t>(SignalEffect::snapshot)) {
    g_snapshot_signal.store(sig);
    return;
  }
  int first = 0;
  g_stop_signal.compare_exchange_strong(first, sig);
  g_stops.fetch_add(1);
  if (sig == SIGINT && g_interrupts.fetch_add(1) > 0) {
    // Async-signal-safe: no formatting library, the iteration's digits by hand.
    static const char none[] = "\nSecond interrupt: exiting now without a snapshot.\n";
    static const char head[] = "\nSecond interrupt: exiting now; the latest snapshot written is of iteration ";
    const int iter = g_written_iter.load();
    if (iter < 0) {
      (void)!::write(STDERR_FILENO, none, sizeof(none) - 1);
    } else {
      char msg[sizeof(head) + 16];
      size_t size = 0;
      for (size_t i = 0; i + 1 < sizeof(head); ++i) msg[size++] = head[i];
      char digits[12];
      size_t n = 0;
      for (unsigned v = static_cast<unsigned>(iter); n == 0 || v > 0; v /= 10)
        digits[n++] = static_cast<char>('0' + v % 10);
      while (n > 0) msg[size++] = digits[--n];
      msg[size++] = '.';
      msg[size++] = '\n';
      (void)!::write(STDERR_FILENO, msg, size);
    }
    ::_exit(130);
  }
  if (sig == SIGINT && g_answer_interrupt) {
    static const char msg[] = "\nCtrl-C: stopping once the current step is done (Ctrl-C again exits at once).\n";
    (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
  }
}

// A page of a memory-mapped file that no longer exists (an LMDB truncated or rewritten while
// read; crema checks the size when it opens one) cannot be read, and the iteration cannot go
// on: the one thing left is to say so, with what to do, rather than "Bus error".
void on_bus_error(int) {
  static const char msg[] =
      "crema: SIGBUS: a memory-mapped file (an LMDB database being read) was cut short or replaced while crema "
      "read it, or the memory failed. Stopped without a snapshot; once the data is whole again, run the command "
      "again (a train resumes from its latest snapshot with --resume).\n";
  (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
  ::_exit(1);
}

// Under a memory limit a library that does not check its own allocations (oneDNN's code
// generator) may crash when the limit is reached: say why before the crash takes its course.
char g_crash_note[512];
size_t g_crash_note_length = 0;

void on_crash_under_limit(int sig) {
  (void)!::write(STDERR_FILENO, g_crash_note, g_crash_note_length);
  std::signal(sig, SIG_DFL);  // returning repeats the fault, which now ends the process (a core, if enabled)
}

// "stop", "snapshot" or "none".
bool parse_signal_effect(const std::string& text, SignalEffect& effect) {
  if (text == "stop")
    effect = SignalEffect::stop;
  else if (text == "snapshot")
    effect = SignalEffect::snapshot;
  else if (text == "none")
    effect = SignalEffect::none;
  else
    return false;
  return true;
}

}  // namespace

SignalEffects default_signal_effects() {
  SignalEffects effects;
  for (const auto& [sig, name] : kSignals) effects[sig] = sig == SIGHUP ? SignalEffect::snapshot : SignalEffect::stop;
  return effects;
}

std::string signal_name(int sig) {
  for (const auto& [s, name] : kSignals)
    if (s == sig) return name;
  return "signal " + std::to_string(sig);
}

std::string apply_signal_effects(const std::vector<std::string>& items, SignalEffects& effects) {
  SignalEffects changed = effects;
  std::vector<int> given;
  for (const std::string& written : items) {
    std::string item;  // "USR1=snapshot, TERM=stop": the spaces go
    for (const char c : written)
      if (!std::isspace(static_cast<unsigned char>(c))) item += c;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "' is not SIGNAL=EFFECT (e.g. USR1=snapshot)";
    std::string name = item.substr(0, eq);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    if (name.rfind("SIG", 0) != 0) name = "SIG" + name;
    const auto known =
        std::find_if(std::begin(kSignals), std::end(kSignals), [&](const auto& s) { return name == s.second; });
    if (known == std::end(kSignals))
      return "'" + item.substr(0, eq) + "' is not a signal crema handles; give INT, TERM, HUP, USR1, USR2 or XCPU";
    if (std::find(given.begin(), given.end(), known->first) != given.end())
      return "it gives " + name + " an effect twice";
    given.push_back(known->first);
    if (!parse_signal_effect(item.substr(eq + 1), changed[known->first]))
      return "'" + item.substr(eq + 1) + "' is not an effect; give stop, snapshot or none";
  }
  effects = changed;
  return "";
}

void install_signal_handlers(const SignalEffects& effects, bool can_snapshot) {
  g_answer_interrupt = ::isatty(STDERR_FILENO) ? 1 : 0;  // a terminal's Ctrl-C; a job's log has no use for it
  for (const auto& [sig, effect] : effects) {
    const SignalEffect e = effect == SignalEffect::snapshot && !can_snapshot ? SignalEffect::none : effect;
    g_effect[sig] = static_cast<sig_atomic_t>(e);
    if (sig <= 0 || sig >= NSIG) continue;
    struct sigaction sa {};
    sa.sa_handler = e == SignalEffect::none ? SIG_IGN : on_signal;
    sa.sa_flags = SA_RESTART;  // a write or read the signal lands in goes on rather than failing with EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
  std::signal(SIGPIPE, SIG_IGN);  // a failed write to the log is an EPIPE, not the end of the run
}

void install_process_signal_handlers() {
  // A launcher or a shell's trap may hand its blocked signals down: blocked, a stop would
  // wait in the kernel while the run went on, until a SIGKILL ended it without a snapshot
  // (and `crema test` or `classify` would not end at all). Unblocked here, before any thread
  // starts, every thread inherits the mask.
  sigset_t stops;
  sigemptyset(&stops);
  for (const auto& [sig, name] : kSignals) sigaddset(&stops, sig);
  pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_bus_error;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
  std::string limits;
  for (const auto& [resource, name] : {std::pair{RLIMIT_AS, "a virtual-memory limit (ulimit -v)"},
                                       std::pair{RLIMIT_DATA, "a data-size limit (ulimit -d)"}})
    if (rlimit limit{}; getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
      limits +=
          (limits.empty() ? "" : " and ") + std::string(name) + " of " + std::to_string(limit.rlim_cur >> 20) + " MiB";
  if (!limits.empty()) {
    const std::string note = "crema: crashed (SIGSEGV) under " + limits +
                             ", most likely inside a library that could not get memory as the limit was reached "
                             "(oneDNN's code generator does not check): raise the limit. Snapshots written so far "
                             "are kept.\n";
    g_crash_note_length = std::min(note.size(), sizeof(g_crash_note));
    std::memcpy(g_crash_note, note.data(), g_crash_note_length);
    struct sigaction crash {};
    crash.sa_handler = on_crash_under_limit;
    sigemptyset(&crash.sa_mask);
    sigaction(SIGSEGV, &crash, nullptr);
  }
}

void note_snapshot_written(int iter) { g_written_iter.store(iter); }

bool stop_requested() { return g_stops.load() > 0; }

namespace {
std::atomic<unsigned long> g_progress{0};

// Ends the process with `status`, logging `why` (as an error for a non-zero status) and doing
// BeforeForcedExit's work, without exit handlers: one of them could wait on a blocked thread
// too. The message goes first (the terminal's sink before a log file's), and a backstop ends
// the process should the work or a log file hang on the same stalled file system.
[[noreturn]] void forced_exit(int status, const std::string& why) {
  try {
    std::thread([status] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      ::_exit(status);
    }).detach();
  } catch (...) {  // no thread to be had: the exit goes on without a backstop
  }
  std::lock_guard<std::mutex> lock(forced_exit_mutex());  // held until _exit
  spdlog::log(status == 0 ? spdlog::level::warn : spdlog::level::err, "{}", why);
  spdlog::default_logger()->flush();
  for (const auto& [owner, work] : forced_exit_work()) {
    try {
      work();
    } catch (...) {  // the exit goes on
    }
  }
  ::_exit(status);
}
}  // namespace

void note_progress() { g_progress.fetch_add(1, std::memory_order_relaxed); }

void exit_past_blocked_reader(int status, const std::string& outcome, const std::string& layer) {
  const std::string why = outcome + " [" + (layer.empty() ? "a data reader" : "data layer '" + layer + "'") +
                          " is still blocked in a read 10 s later; crema exits without waiting for it]";
  try {
    std::thread([status, why] {
      std::this_thread::sleep_for(std::chrono::seconds(10));
      forced_exit(status, why);
    }).detach();
  } catch (...) {  // no thread to be had: the exit waits for the reader, as it would without this
  }
}

SetupWatch::SetupWatch(std::optional<std::chrono::steady_clock::time_point> deadline, std::string late) {
  using clock = std::chrono::steady_clock;
  thread_ = std::thread([this, deadline, late = std::move(late)] {
    constexpr auto kGrace = std::chrono::seconds(10);
    // The grace counts from the stop (or the deadline), or from the latest sign of progress
    // after it (a log line: each layer set up, each file read), so a slow setup still ends
    // the usual way.
    std::optional<clock::time_point> since;
    unsigned long progress = g_progress.load();
    while (!done_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto now = clock::now();
      const bool due = stop_requested() || (deadline && now >= *deadline);
      if (!due) continue;
      if (const unsigned long p = g_progress.load(); !since || p != progress) since = now, progress = p;
      if (now - *since < kGrace || done_.load()) continue;
      const std::string why =
          (stop_requested() ? signal_name(g_stop_signal.load()) + " came during setup, which" : late + "; setup") +
          " has made no progress for 10 s since (a read that never returns: a data file on a stalled network file "
          "system, a FIFO with no writer?), and nothing was trained yet, so crema exits without a snapshot";
      forced_exit(1, why);
    }
  });
}
SetupWatch::~SetupWatch() {
  done_.store(true);
  thread_.join();
}

BeforeForcedExit::BeforeForcedExit(std::function<void()> work) {
  std::lock_guard<std::mutex> lock(forced_exit_mutex());
  forced_exit_work()[this] = std::move(work);
}

BeforeForcedExit::~BeforeForcedExit() {
  std::lock_guard<std::mutex> lock(forced_exit_mutex());
  forced_exit_work().erase(this);
}

Solver::Action poll_signal_action() {
  if (stop_requested()) {
    if (!g_stop_logged.exchange(true)) spdlog::warn("{} received: stopping", signal_name(g_stop_signal.load()));
    return Solver::Action::Stop;
  }
  if (const int sig = g_snapshot_signal.exchange(0); sig != 0) {
    spdlog::info("{} received: a snapshot is written once the current iteration (or the final test pass) is done",
                 signal_name(sig));
    return Solver::Action::Snapshot;
  }
  return Solver::Action::None;
}

}  // namespace crema::app
