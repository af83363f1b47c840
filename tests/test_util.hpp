// Shared helpers for tests that use files or drive the crema executable.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/error.hpp"

namespace crema::test {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "crema-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures its output.
inline RunResult run(const std::string& command) {
  RunResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// Routes spdlog's default logger into a string while alive.
class CaptureLog {
 public:
  CaptureLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
  }
  ~CaptureLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// How many times `word` occurs in `text`.
inline size_t count_of(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

inline std::string crema_binary() { return CREMA_BINARY; }
inline std::string source_dir() { return CREMA_SOURCE_DIR; }
// The Python of the test-time references (scripts/install_test_references.sh): the
// build's virtual environment when it exists, else the system's python3.
inline std::string reference_python() {
  const std::string venv = (std::filesystem::path(CREMA_BINARY).parent_path() / "pyref/bin/python3").string();
  return std::filesystem::exists(venv) ? venv : "python3";
}
// A crema command line: the binary under test, then `args`.
inline std::string crema_cmd(const std::string& args) { return crema_binary() + " " + args; }

// The message of the crema::Error that `f` throws, or "" when it throws none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline bool fashion_mnist_available() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace crema::test

#include <signal.h>
#include <pty.h>
#include <spawn.h>
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "io/idx.hpp"

extern char** environ;

namespace crema::test {

// Waits for child `pid` to end, at most `seconds`, then kills it. Its exit status (128 + the
// signal for a signal), or -1 when it had to be killed or is no child of ours (spawn failed,
// reaped already). Never signals a pid <= 0: kill(-1) would reach every process of the user.
inline int reap_within(pid_t pid, double seconds) {
  if (pid <= 0) return -1;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int st = 0;
  bool killed = false;
  for (;;) {
    const pid_t r = ::waitpid(pid, &st, killed ? 0 : WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (r == 0 && std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      killed = true;
    } else if (r == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return killed ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A child process whose stdout+stderr go to a log file; for signal tests.
class Child {
 public:
  // Output::log: stdout and stderr to `log`. Output::closed_pipe: to a pipe nobody reads (as
  // `| tee` after the same Ctrl-C ended tee), with SIGPIPE at its default action; the child
  // must write `log` itself (--log).
  enum class Output { log, closed_pipe };
  Child(const std::vector<std::string>& argv, const std::string& log, Output output = Output::log,
        const std::vector<int>& blocked = {})
      : log_(log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    int ends[2] = {-1, -1};
    if (output == Output::closed_pipe && ::pipe(ends) != 0) return;  // pid() -1: the test fails
    if (output == Output::closed_pipe) {
      posix_spawn_file_actions_adddup2(&fa, ends[1], 1);
      posix_spawn_file_actions_addclose(&fa, ends[0]);
      posix_spawn_file_actions_addclose(&fa, ends[1]);
      sigset_t defaults;
      sigemptyset(&defaults);
      sigaddset(&defaults, SIGPIPE);  // a test runner that ignores it must not hide the bug
      posix_spawnattr_setsigdefault(&attr, &defaults);
    } else {
      posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    // The child's signal mask is `blocked`, not whatever the test runner blocks.
    sigset_t mask;
    sigemptyset(&mask);
    for (const int sig : blocked) sigaddset(&mask, sig);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK |
                                                       (output == Output::closed_pipe ? POSIX_SPAWN_SETSIGDEF : 0)));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, &attr, args.data(), environ) != 0) pid_ = -1;
    for (const int end : ends)
      if (end >= 0) ::close(end);  // the reader is gone before the child writes a byte
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Waits (bounded) until the log contains `text`.
  bool wait_for_log(const std::string& text, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (read_file(log_).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void signal(int sig) {
    if (pid_ > 0 && !done_) ::kill(pid_, sig);
  }
  // The exit status; a child still running after `seconds` is killed (-1), its log
  // printed, so that a hang fails its test with what the child said.
  int wait(double seconds = 300) {
    const bool running = pid_ > 0 && !done_;
    const int status = wait_at_most(seconds);
    if (running && status == -1)
      std::fprintf(stderr, "child still running after %g s, killed; its log:\n%s\n", seconds, log().c_str());
    return status;
  }
  // The exit status, or -1 if the child is still running after `seconds` (then killed, so a
  // hang fails the test instead of stalling it). Again after the end: the same status.
  int wait_at_most(double seconds) {
    if (!done_) status_ = reap_within(pid_, seconds);
    done_ = true;
    return status_;
  }
  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
  int status_ = -1;
  std::string log_;
};

// A child on a pseudo-terminal of its own, as a program run from a shell is: forkpty makes
// the terminal, and a thread reads everything the child writes to it until the child has
// closed it, so none of the output is lost at the end. (script(1), used before, put a shell
// and its own stdin handling in between, and failed once in CI without saying why.)
class TerminalChild {
 public:
  explicit TerminalChild(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int master = -1;
    pid_ = ::forkpty(&master, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      sigset_t none;  // not the test runner's blocked signals
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (pid_ < 0) return;  // no terminal to be had: pid() -1
    master_ = master;
    reader_ = std::thread([this] {
      char buffer[4096];
      for (;;) {
        const ssize_t n = ::read(master_, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EIO once the child's last descriptor of the terminal is closed
        std::lock_guard<std::mutex> lock(mutex_);
        output_.append(buffer, static_cast<size_t>(n));
      }
    });
  }
  ~TerminalChild() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      if (reader_.joinable()) reader_.join();
    }
    if (master_ >= 0) ::close(master_);
  }
  pid_t pid() const { return pid_; }
  // Waits (bounded) until the output contains `text`.
  bool wait_for_output(const std::string& text, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (output().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void signal(int sig) {
    if (pid_ > 0 && !done_) ::kill(pid_, sig);
  }
  // The exit status, once all the child's output is read; a child still running after
  // `seconds` is killed (-1), its output printed. Again after the end: the same status.
  int wait(double seconds = 300) {
    if (done_) return status_;
    status_ = reap_within(pid_, seconds);
    done_ = true;
    if (reader_.joinable()) reader_.join();  // the child's end closed the terminal: EIO
    if (status_ == -1 && pid_ > 0)
      std::fprintf(stderr, "child still running after %g s, killed; its output:\n%s\n", seconds, output().c_str());
    return status_;
  }
  std::string output() {
    std::lock_guard<std::mutex> lock(mutex_);
    return output_;
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool done_ = false;
  int status_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::string output_;
};

// A small learnable IDX data set: `n` images of 10x10 in 10 classes, each class a
// bar at its own position plus noise. Writes <dir>/<split>-images-idx3-ubyte and
// <dir>/<split>-labels-idx1-ubyte.
inline void write_toy_idx(const std::string& dir, const std::string& split, int n, unsigned seed) {
  io::IdxArray images{{n, 10, 10}, std::vector<uint8_t>(static_cast<size_t>(n) * 100)};
  io::IdxArray labels{{n}, std::vector<uint8_t>(static_cast<size_t>(n))};
  unsigned s = seed;
  auto next = [&s]() { return (s = s * 1664525u + 1013904223u) >> 24; };
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(next() % 10);
    labels.data[static_cast<size_t>(i)] = static_cast<uint8_t>(label);
    for (int p = 0; p < 100; ++p) {
      const bool bar = (p / 10 == label) || (p % 10 == label && label % 2 == 0);
      images.data[static_cast<size_t>(i) * 100 + static_cast<size_t>(p)] = static_cast<uint8_t>((bar ? 160 : 0) + next() % 90);
    }
  }
  io::write_idx(dir + "/" + split + "-images-idx3-ubyte", images);
  io::write_idx(dir + "/" + split + "-labels-idx1-ubyte", labels);
}

// A solver + net over write_toy_idx data in `dir`, exercising shuffling, dropout,
// momentum, a smoothed displayed loss and periodic testing.
inline std::string toy_solver_yaml(const std::string& dir, int max_iter) {
  return "net:\n"
         "  name: toy\n"
         "  layer:\n"
         "    - {name: d, type: Data, top: [data, label], include: {phase: TRAIN}, transform_param: {scale: 0.004},\n"
         "       data_param: {source: " + dir + "/train-images-idx3-ubyte, batch_size: 16}}\n"
         "    - {name: d, type: Data, top: [data, label], include: {phase: TEST}, transform_param: {scale: 0.004},\n"
         "       data_param: {source: " + dir + "/test-images-idx3-ubyte, batch_size: 50}}\n"
         "    - {name: conv, type: Convolution, bottom: data, top: conv, convolution_param: {num_output: 4, kernel_size: 3, weight_filler: {type: xavier}}}\n"
         "    - {name: relu, type: ReLU, bottom: conv, top: conv}\n"
         "    - {name: fc1, type: InnerProduct, bottom: conv, top: fc1, inner_product_param: {num_output: 32, weight_filler: {type: xavier}}}\n"
         "    - {name: drop, type: Dropout, bottom: fc1, top: fc1, dropout_param: {dropout_ratio: 0.3}}\n"
         "    - {name: fc2, type: InnerProduct, bottom: fc1, top: fc2, inner_product_param: {num_output: 10, weight_filler: {type: xavier}}}\n"
         "    - {name: acc, type: Accuracy, bottom: [fc2, label], top: accuracy, include: {phase: TEST}}\n"
         "    - {name: loss, type: SoftmaxWithLoss, bottom: [fc2, label], top: loss}\n"
         "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: inv\ngamma: 0.0001\npower: 0.75\n"
         "display: 5\naverage_loss: 7\ntest_iter: 2\ntest_interval: 20\n"
         "max_iter: " + std::to_string(max_iter) + "\nsnapshot_prefix: " + dir + "/snap/toy\nrandom_seed: 42\n";
}

// toy_solver_yaml's job in a fresh directory: its data, and the solver file.
struct ToyJob {
  TempDir dir;
  std::string solver;
  explicit ToyJob(int max_iter) {
    write_toy_idx(dir.path().string(), "train", 400, 1);
    write_toy_idx(dir.path().string(), "test", 100, 2);
    solver = dir / "solver.yaml";
    write_file(solver, toy_solver_yaml(dir.path().string(), max_iter));
  }
};

}  // namespace crema::test
