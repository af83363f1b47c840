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
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <iterator>

namespace {

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

// Only system calls and plain string functions: libc is not initialised yet (setenv here would
// be lost), but the arguments and the environment are there.
void restart_with_one_openblas_buffer(int /*argc*/, char** argv, char** envp) {
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
  if (!limited || envp == nullptr) return;
  static char one_thread[] = "OMP_NUM_THREADS=1";
  static char* env[4096];
  size_t count = 0;
  for (char** e = envp; *e != nullptr; ++e) {
    if (named(*e, "OMP_NUM_THREADS")) {
      if ((*e)[16] != '\0') return;  // the user's own count is kept (and so is a restarted run's)
      continue;                      // an empty one, which libgomp ignores, is replaced
    }
    if (count + 2 > std::size(env)) return;  // an environment this large is left as it is
    env[count++] = *e;
  }
  env[count++] = one_thread;
  env[count] = nullptr;
  // Even the one buffer needs room (OpenBLAS's 129 MiB and a little for the threads' stacks,
  // 143 MiB measured in all): without it the restarted process would hang the same way.
  constexpr unsigned long kLoadKib = 144ul << 10;
  for (const Limit& l : kLimits) {
    rlimit r{};
    if (getrlimit(l.resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) continue;
    const unsigned long used = status_kib(l.status_field), limit_kib = static_cast<unsigned long>(r.rlim_cur >> 10);
    if (used == 0 || used + kLoadKib <= limit_kib) continue;
    char message[512];
    size_t len = 0;
    append(message, sizeof(message), len, "crema: ");
    append(message, sizeof(message), len, l.name);
    append(message, sizeof(message), len, " of ");
    append(message, sizeof(message), len, limit_kib >> 10);
    append(message, sizeof(message), len, " MiB is too small to start: crema's libraries take ");
    append(message, sizeof(message), len, used >> 10);
    append(message, sizeof(message), len,
           " MiB of it, and OpenBLAS takes 129 MiB more while it loads (where it would hang, not fail). Raise the "
           "limit to at least ");
    append(message, sizeof(message), len, (used >> 10) + 1024);
    append(message, sizeof(message), len, " MiB (a net's blobs and each thread's buffers come on top).\n");
    (void)!write(STDERR_FILENO, message, len);
    _exit(1);
  }
  execve("/proc/self/exe", argv, env);
  // No /proc (or no permission): go on, saying what may follow.
  static const char kNoRestart[] =
      "crema: warning: could not restart itself with OMP_NUM_THREADS=1 under a memory limit (no /proc/self/exe?); if "
      "it hangs while loading, set OMP_NUM_THREADS=1 in the environment\n";
  (void)!write(STDERR_FILENO, kNoRestart, sizeof(kNoRestart) - 1);
}

}  // namespace

// An executable's .preinit_array runs before the constructors of the libraries it links.
__attribute__((section(".preinit_array"), used)) void (*crema_preinit)(int, char**,
                                                                       char**) = restart_with_one_openblas_buffer;
