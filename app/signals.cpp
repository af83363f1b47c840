#include "app/signals.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace crema::app {

namespace {
std::atomic<int> g_stop{0};
std::atomic<int> g_snapshot{0};

void on_stop(int sig) {
  if (g_stop.fetch_add(1) > 0 && sig == SIGINT) {
    static const char msg[] = "\nSecond interrupt: exiting now without a snapshot.\n";
    (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    ::_exit(130);
  }
}
void on_hup(int) { g_snapshot.store(1); }
}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hup;
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);
}

bool stop_requested() { return g_stop.load() > 0; }

Solver::Action poll_signal_action() {
  if (stop_requested()) return Solver::Action::Stop;
  if (g_snapshot.exchange(0) != 0) return Solver::Action::Snapshot;
  return Solver::Action::None;
}

}  // namespace crema::app
