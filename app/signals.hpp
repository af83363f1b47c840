// SIGINT/SIGTERM: stop after the current iteration with a snapshot (a second SIGINT
// exits at once); SIGHUP: snapshot and go on.
#pragma once

#include "engine/solver.hpp"

namespace crema::app {

void install_signal_handlers();
// Consumes a pending request.
Solver::Action poll_signal_action();
// Whether a stop was asked for (consumes nothing).
bool stop_requested();

}  // namespace crema::app
