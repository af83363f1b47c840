// What crema does before any library it links is initialised.
//
// OpenBLAS (0.3.21, Debian 12's OpenMP build) takes a 128 MiB work buffer per core while it
// loads, before main, and when a memory limit (`ulimit -v`, SGE's h_vmem; `ulimit -d`, PBS's
// pmem, which also counts private mappings since Linux 4.7) refuses one on a node with many cores,
// it retries for ever at full speed: the process hangs before it has printed a line. The one
// setting it reads that early is OMP_NUM_THREADS (not OPENBLAS_NUM_THREADS, in this build), and
// OMP_NUM_THREADS=1 makes it take a single buffer. So, under such a limit and without an
// OMP_NUM_THREADS of the user's, crema starts itself again with OMP_NUM_THREADS=1 from the
// executable's pre-initialisers, which run before any shared library's constructor; main then sets
// the thread counts itself once it knows how many threads' buffers fit (reserve_blas_buffers in
// engine/math). Without a limit nothing changes.
#include "app/startup.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <iterator>

namespace crema::app {

unsigned long omp_threads(const char* value) {
  if (value == nullptr) return 0;
  unsigned long n = 0;
  const char* p = value;
  for (; *p >= '0' && *p <= '9' && n < 1000000; ++p) n = n * 10 + static_cast<unsigned long>(*p - '0');
  return p != value && (*p == '\0' || *p == ',') && n < 1000000 ? n : 0;
}

}  // namespace crema::app

namespace {

using crema::app::omp_threads;

bool named(const char* entry, const char* name) {
  const size_t n = std::strlen(name);
  return std::strncmp(entry, name, n) == 0 && entry[n] == '=';
}

// A "Vm…:" line of /proc/self/status in KiB (every library is mapped by now), 0 when unknown;
// read with system calls alone.
unsigned long status_kib(const char* field) {
  char text[4096];
  const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  const char* at = std::strstr(text, field);
  if (at == nullptr) return 0;
  unsigned long kib = 0;
  for (at += std::strlen(field); *at == ' ' || *at == '\t'; ++at) {
  }
  for (; *at >= '0' && *at <= '9'; ++at) kib = kib * 10 + static_cast<unsigned long>(*at - '0');
  return kib;
}

// Appends `text`, or the decimal `value`, to the message being built in `out` (size `cap`).
void append(char* out, size_t cap, size_t& len, const char* text) {
  for (; *text != '\0' && len + 1 < cap; ++text) out[len++] = *text;
  out[len] = '\0';
}
void append(char* out, size_t cap, size_t& len, unsigned long value) {
  char digits[24];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0 && len + 1 < cap) out[len++] = digits[--n];
  out[len] = '\0';
}

struct Message {
  char text[768];
  size_t len = 0;
  Message& operator<<(const char* part) {
    append(text, sizeof(text), len, part);
    return *this;
  }
  Message& operator<<(unsigned long value) {
    append(text, sizeof(text), len, value);
    return *this;
  }
  void say() const { (void)!write(STDERR_FILENO, text, len); }
};

// Only system calls and plain string functions: libc is not initialised yet (setenv here would
// be lost), but the arguments and the environment are there.
void prepare_process(int /*argc*/, char** argv, char** envp) {
  if (envp == nullptr) return;
  bool restart = false;
  bool small_stack = false;  // running under a hard stack limit below 1 MiB, said once at the end
  unsigned long small_stack_kib = 0;
  // The stack size limit is every thread's stack size: below 1 MiB oneDNN's and the solver's
  // frames overflow it (a crash without a word); above 1 GiB no thread can be started. Both
  // are set for this process before glibc reads it, with a line saying so.
  constexpr rlim_t kKiB = 1024, kUsualStack = 8192 * kKiB;
  if (rlimit stack{}; getrlimit(RLIMIT_STACK, &stack) == 0 && stack.rlim_cur != RLIM_INFINITY &&
                      (stack.rlim_cur < 1024 * kKiB || stack.rlim_cur > (rlim_t{1} << 30))) {
    const rlim_t was = stack.rlim_cur;
    stack.rlim_cur =
        stack.rlim_max == RLIM_INFINITY ? kUsualStack : (stack.rlim_max < kUsualStack ? stack.rlim_max : kUsualStack);
    if (stack.rlim_cur < 256 * kKiB) {
      (Message() << "crema: the stack size limit (ulimit -s) of " << static_cast<unsigned long>(was / kKiB)
                 << " KiB, with a hard limit of " << static_cast<unsigned long>(stack.rlim_max / kKiB)
                 << " KiB, is too small for crema's threads; give it at least 1024 KiB (8192 is usual)\n")
          .say();
      _exit(1);
    }
    if (stack.rlim_cur < 1024 * kKiB) {
      // The hard limit (between 256 KiB and 1 MiB) allows no more: the soft limit is raised to
      // it, silently, and the process that runs says so once (below: a restart for the soft
      // limit or for OMP_NUM_THREADS finds the same limit again).
      // Said with `was`: this process's threads keep it (no restart, or one that fails).
      small_stack = true;
      small_stack_kib = static_cast<unsigned long>(was / kKiB);
      if (stack.rlim_cur != was && setrlimit(RLIMIT_STACK, &stack) == 0) restart = true;
    } else if (setrlimit(RLIMIT_STACK, &stack) == 0) {
      (Message() << "crema: the stack size limit (ulimit -s) of " << static_cast<unsigned long>(was / kKiB)
                 << " KiB is every thread's stack size, " << (was < kUsualStack ? "too small" : "too large")
                 << " for crema's threads: this run uses " << static_cast<unsigned long>(stack.rlim_cur / kKiB)
                 << " KiB\n")
          .say();
      restart = true;
    }
  }
  struct Limit {
    int resource;
    const char* status_field;  // what the limit counts
    const char* name;
  };
  static const Limit kLimits[] = {{RLIMIT_AS, "VmSize:", "a virtual-memory limit (ulimit -v; SGE's h_vmem sets one)"},
                                  {RLIMIT_DATA, "VmData:", "a data-size limit (ulimit -d; PBS's pmem sets one)"}};
  bool limited = false;
  for (const Limit& l : kLimits)
    if (rlimit r{}; getrlimit(l.resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY) limited = true;
  char** env = envp;
  unsigned long load_threads = 0;  // OpenBLAS's buffers while it loads
  if (limited) {
    const char* omp = nullptr;
    for (char** e = envp; *e != nullptr; ++e)
      if (named(*e, "OMP_NUM_THREADS")) omp = *e + 16;
    load_threads = omp_threads(omp);
    if (load_threads == 0) {
      // Unset, empty or not a count (which libgomp ignores): OMP_NUM_THREADS=1 takes its place.
      static char one_thread[] = "OMP_NUM_THREADS=1";
      static char mark[sizeof(crema::app::kRestartThreadsMark) + 2];  // "<mark>=1"
      std::memcpy(mark, crema::app::kRestartThreadsMark, sizeof(crema::app::kRestartThreadsMark) - 1);
      std::memcpy(mark + sizeof(crema::app::kRestartThreadsMark) - 1, "=1", 3);
      static char* with_one[4096];
      size_t count = 0;
      for (char** e = envp; *e != nullptr && count + 3 <= std::size(with_one); ++e)
        if (!named(*e, "OMP_NUM_THREADS") && !named(*e, crema::app::kRestartThreadsMark)) with_one[count++] = *e;
      with_one[count++] = one_thread;
      with_one[count++] = mark;
      with_one[count] = nullptr;
      env = with_one;
      load_threads = 1;
      restart = true;
    } else if (const long cores = sysconf(_SC_NPROCESSORS_ONLN);
               cores > 0 && load_threads > static_cast<unsigned long>(cores)) {
      load_threads = static_cast<unsigned long>(cores);  // OpenBLAS takes no more than the cores
    }
    // Each buffer is 129 MiB, and the threads' stacks want a little (143 MiB measured for one):
    // without the room, OpenBLAS would hang the same way after the restart.
    const unsigned long load_kib = load_threads * (129ul << 10) + (15ul << 10);
    for (const Limit& l : kLimits) {
      rlimit r{};
      if (getrlimit(l.resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) continue;
      const unsigned long used = status_kib(l.status_field), limit_kib = static_cast<unsigned long>(r.rlim_cur >> 10);
      if (used == 0 || used + load_kib <= limit_kib) continue;
      // Training on one thread needs 514 MiB more once loaded (engine/math's reserve_blas_buffers).
      const unsigned long train_mib = ((used + load_kib) / 1024 + 514 + 49) / 50 * 50;
      Message m;
      m << "crema: " << l.name << " of " << (limit_kib >> 10) << " MiB is too small to start: crema's libraries take "
        << (used >> 10) << " MiB of it, and OpenBLAS takes " << (load_kib >> 10) << " MiB more while it loads";
      if (load_threads > 1) m << " (" << load_threads << " buffers of 129 MiB, as OMP_NUM_THREADS asks)";
      m << ", where it would hang, not fail. Raise the limit; training on one thread needs about " << train_mib
        << " MiB";
      if (load_threads > 1) m << ", with OMP_NUM_THREADS=1 (or unset)";
      (m << "\n").say();
      _exit(1);
    }
  }
  const auto say_small_stack = [&] {
    if (small_stack)
      (Message() << "crema: the stack size limit (ulimit -s) of " << small_stack_kib
                 << " KiB is every thread's stack size, below the 1024 KiB crema's threads want, and its hard limit "
                    "allows no more; running with it (raise the hard limit to 8192 KiB if crema crashes)\n")
          .say();
  };
  if (!restart) {
    say_small_stack();
    return;
  }
  execve("/proc/self/exe", argv, env);
  say_small_stack();
  // No /proc (or no permission): go on, saying what may follow.
  static const char kNoRestart[] =
      "crema: warning: could not restart itself with the settings above (no /proc/self/exe?); if it hangs while "
      "loading, set OMP_NUM_THREADS=1 in the environment\n";
  (void)!write(STDERR_FILENO, kNoRestart, sizeof(kNoRestart) - 1);
}

}  // namespace

// An executable's .preinit_array runs before the constructors of the libraries it links.
__attribute__((section(".preinit_array"), used)) void (*crema_preinit)(int, char**, char**) = prepare_process;
