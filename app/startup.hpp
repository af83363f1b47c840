#pragma once
// What app/startup.cpp does before main, as main needs to know it.

namespace crema::app {

// OMP_NUM_THREADS as libgomp reads it (the first number of a list), 0 when unset or not a count.
unsigned long omp_threads(const char* value);

// Set beside the OMP_NUM_THREADS=1 that crema's restart under a memory limit puts in the
// environment, so that main can tell that one from a user's.
inline constexpr char kRestartThreadsMark[] = "CREMA_RESTART_SET_OMP_NUM_THREADS";

}  // namespace crema::app
