#include "engine/math.hpp"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "engine/error.hpp"

namespace crema {

void cpu_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b,
              float beta, float* c) {
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, n);
}

void cpu_gemv(bool trans_a, int m, int n, float alpha, const float* a, const float* x, float beta, float* y) {
  cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, m, n, alpha, a, n, x, 1, beta, y, 1);
}

void cpu_axpy(int n, float alpha, const float* x, float* y) { cblas_saxpy(n, alpha, x, 1, y, 1); }

void cpu_axpby(int n, float alpha, const float* x, float beta, float* y) {
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}

void cpu_weighted_sum(long n, const std::vector<const float*>& x, const std::vector<float>& coeff, float* y) {
  for (size_t k = 0; k < x.size(); ++k) {
    const float* xk = x[k];  // (n)
    const float c = coeff[k];
    if (k == 0) {  // written, not added: y may hold anything before
#pragma omp parallel for simd if (n >= kParallelMinElements)
      for (long i = 0; i < n; ++i) y[i] = c * xk[i];
    } else {
#pragma omp parallel for simd if (n >= kParallelMinElements)
      for (long i = 0; i < n; ++i) y[i] += c * xk[i];
    }
  }
}

void cpu_scale(int n, float alpha, float* x) { cblas_sscal(n, alpha, x, 1); }

void cpu_set(int n, float value, float* x) {
  if (value == 0.f && n < kParallelMinElements) {
    std::memset(x, 0, sizeof(float) * static_cast<size_t>(n));
    return;
  }
#pragma omp parallel for simd if (n >= kParallelMinElements)
  for (int i = 0; i < n; ++i) x[i] = value;
}

void cpu_copy(int n, const float* x, float* y) {
  if (x == y) return;
  if (n < kParallelMinElements) {
    std::memcpy(y, x, sizeof(float) * static_cast<size_t>(n));
    return;
  }
  // One core's copy does not saturate memory bandwidth: split large copies.
#pragma omp parallel
  {
    const int parts = omp_get_num_threads(), part = omp_get_thread_num();
    const long begin = static_cast<long>(n) * part / parts, end = static_cast<long>(n) * (part + 1) / parts;
    std::memcpy(y + begin, x + begin, sizeof(float) * static_cast<size_t>(end - begin));
  }
}

float cpu_dot(int n, const float* x, const float* y) { return cblas_sdot(n, x, 1, y, 1); }
float cpu_asum(int n, const float* x) { return cblas_sasum(n, x, 1); }

long long cpu_count_non_finite(long long n, const float* x) {
  long long bad = 0;
  for (long long i = 0; i < n; ++i) bad += !std::isfinite(x[i]);
  return bad;
}

namespace {
int g_threads = 0;
}

namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The kernel writes a space in a mountinfo path as "\040" (tab, newline and backslash likewise).
std::string unescape_mount_path(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) && std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool has_token(const std::string& list, const std::string& token) {
  const std::vector<std::string> tokens = split_commas(list);
  return std::find(tokens.begin(), tokens.end(), token) != tokens.end();
}

// The quota, in CPUs, of one cgroup folder; nothing when it sets none. cgroup v2's cpu.max
// holds "max 100000" or "<quota> <period>"; v1 has cpu.cfs_quota_us (-1: none) and
// cpu.cfs_period_us.
std::optional<double> folder_cpu_quota(const std::string& dir, bool v2) {
  double quota = 0, period = 0;
  if (v2) {
    std::istringstream in(read_first_line(dir + "/cpu.max"));
    std::string q;
    if (!(in >> q >> period) || q == "max") return std::nullopt;
    quota = std::atof(q.c_str());
  } else {
    const std::string q = read_first_line(dir + "/cpu.cfs_quota_us");
    if (q.empty()) return std::nullopt;
    quota = std::atof(q.c_str());
    period = std::atof(read_first_line(dir + "/cpu.cfs_period_us").c_str());
  }
  if (quota <= 0 || period <= 0) return std::nullopt;
  return quota / period;
}

}  // namespace

std::optional<double> cgroup_cpu_quota(const std::string& root) {
  // Which cgroup this process is in, per hierarchy: "0::/path" (v2) or "N:cpu,cpuacct:/path" (v1).
  std::string v2_path, v1_path;
  bool v2_seen = false, v1_seen = false;
  {
    std::ifstream in(root + "/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      const std::string controllers = line.substr(a + 1, b - a - 1);
      if (line.compare(0, a, "0") == 0 && controllers.empty()) {
        v2_seen = true;
        v2_path = line.substr(b + 1);
      } else if (has_token(controllers, "cpu")) {
        v1_seen = true;
        v1_path = line.substr(b + 1);
      }
    }
  }
  if (!v2_seen && !v1_seen) return std::nullopt;
  // Where each hierarchy is mounted, and which of its folders the mount shows as its top (a
  // container sees its own cgroup, "/docker/<id>", mounted as /sys/fs/cgroup/cpu).
  std::optional<double> quota;
  std::ifstream mounts(root + "/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line)) {
    // "36 25 0:31 <root> <mount point> <options> [optional fields] - <type> <source> <super options>"
    std::istringstream fields(line);
    std::string id, parent, dev, mount_root, mount_point, field;
    if (!(fields >> id >> parent >> dev >> mount_root >> mount_point)) continue;
    while (fields >> field && field != "-") {
    }
    std::string type, source, super_options;
    if (!(fields >> type >> source >> super_options)) continue;
    bool v2 = false;
    if (type == "cgroup2" && v2_seen) {
      v2 = true;
    } else if (!(type == "cgroup" && v1_seen && has_token(super_options, "cpu"))) {
      continue;
    }
    const std::string& path = v2 ? v2_path : v1_path;
    mount_root = unescape_mount_path(mount_root);
    mount_point = root + unescape_mount_path(mount_point);
    // The process's folder below the mount; one outside what the mount shows is not reachable.
    std::string rel;
    if (mount_root == "/") {
      rel = path;
    } else if (path == mount_root || path.rfind(mount_root + "/", 0) == 0) {
      rel = path.substr(mount_root.size());
    } else {
      continue;
    }
    while (!rel.empty() && rel.back() == '/') rel.pop_back();
    // Every folder from the process's up to the mount's top limits it: the smallest quota holds.
    for (;;) {
      if (const auto q = folder_cpu_quota(mount_point + rel, v2); q && (!quota || *q < *quota)) quota = q;
      if (rel.empty()) break;
      rel.erase(rel.rfind('/'));
    }
  }
  return quota;
}

int available_cores() {
  static const int cores = [] {
    int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    // Fails only past CPU_SETSIZE (1024) CPUs: then every CPU is taken as usable.
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 0) n = CPU_COUNT(&cpus);
    // A quota of 1.5 CPUs lets two threads run half the time each: rounded up, as a quota
    // is a share of time, not of cores.
    if (const auto quota = cgroup_cpu_quota(""))
      n = std::min(n, std::max(1, static_cast<int>(std::ceil(*quota - 1e-9))));
    return n;
  }();
  return cores;
}

void set_num_threads(int n) {
  if (n <= 0) n = available_cores();
  g_threads = n;
  // oneDNN and crema's loops follow libgomp's pool size; OpenBLAS's is set with its buffers
  // (reserve_blas_buffers).
  omp_set_num_threads(n);
}

int num_threads() { return g_threads > 0 ? g_threads : available_cores(); }

namespace {

// A "Vm…:" line of /proc/self/status in MiB; 0 when unknown.
double status_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::atof(line.c_str() + field.size()) / 1024.0;  // "VmSize:  123456 kB"
  return 0;
}

// The memory limits set on this process, said with what they count now: "a virtual-memory
// limit (…) of N MiB is set and M MiB are mapped already"; "" when none is set. Since Linux 4.7
// the data-size limit counts private mappings too, so either refuses OpenBLAS's buffers.
// The limits that refuse OpenBLAS's buffers, each with the /proc/self/status line it counts.
struct MemoryLimitKind {
  int resource;
  const char* name;
  const char* field;
  const char* counted;
};
constexpr MemoryLimitKind kMemoryLimits[] = {
    {RLIMIT_AS, "a virtual-memory limit (ulimit -v; SGE's h_vmem sets one)", "VmSize:", "are mapped"},
    {RLIMIT_DATA, "a data-size limit (ulimit -d; PBS's pmem sets one)", "VmData:", "count against it"}};

// The soft limit of `resource` in bytes, or nothing when it is not set.
std::optional<rlim_t> soft_limit(int resource) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return limit.rlim_cur;
}

std::string memory_limits_text() {
  std::string text;
  for (const MemoryLimitKind& k : kMemoryLimits)
    if (const auto limit = soft_limit(k.resource))
      text += (text.empty() ? "" : ", and ") + std::string(k.name) + " of " +
              std::to_string(std::lround(static_cast<double>(*limit) / (1024.0 * 1024.0))) + " MiB is set and " +
              std::to_string(std::lround(status_mib(k.field))) + " MiB " + k.counted + " already";
  return text;
}

// The least value of the memory limits set (in MiB) that leaves `more` bytes beyond what each
// counts now; 0 when none is set.
long limit_needed_mib(size_t more) {
  long target = 0;
  for (const MemoryLimitKind& k : kMemoryLimits)
    if (soft_limit(k.resource))
      target = std::max(target, std::lround(status_mib(k.field) + static_cast<double>(more) / (1024.0 * 1024.0) + 0.5));
  return target;
}

// vm.overcommit_memory 2: every writable private mapping is charged against a fixed total.
bool strict_overcommit() {
  std::ifstream mode("/proc/sys/vm/overcommit_memory");
  int value = 0;
  return (mode >> value) && value == 2;
}

// Whether `bytes` more of writable private memory can be mapped now. It counts against the
// limits and strict overcommit as OpenBLAS's malloc will; untouched, it costs nothing.
bool address_space_free(size_t bytes) {
  void* probe = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return false;
  munmap(probe, bytes);
  return true;
}

std::string threads_text(int n) { return n == 1 ? "one thread" : std::to_string(n) + " threads"; }

}  // namespace

std::string address_space_limit_note() {
  std::string text = memory_limits_text();
  if (text.empty()) return "";
  text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return " " + text + ": raise the limit if the machine has the memory.";
}

void reserve_blas_buffers(bool fewer_threads_allowed) {
  const int wanted = num_threads();
  int threads = wanted;
  const std::string limits = memory_limits_text();
  // Without a limit or strict overcommit, a refused mapping cannot happen short of the
  // machine's memory and swap (and one large probe could be refused where OpenBLAS's
  // separate buffers would not).
  if (!limits.empty() || strict_overcommit()) {
    // OpenBLAS 0.3's BUFFER_SIZE (128 MiB) plus alignment and guard pages: it keeps one per
    // thread of its pool (at most 64 in Debian's build) and takes one more per concurrent
    // caller (up to k, from crema's parallel regions). Each thread past the first also has a
    // stack and, at its first allocation, a 64 MiB malloc arena. Beside them the least room for
    // the nets and oneDNN's generated code (oneDNN crashes when that mapping is refused):
    // LeNet's training needs about 100 MiB.
    constexpr size_t kMiB = size_t{1} << 20, kBuffer = 129 * kMiB, kArena = 64 * kMiB, kNets = 256 * kMiB;
    size_t stack = 8 * kMiB;
    if (pthread_attr_t attr; pthread_getattr_default_np(&attr) == 0) {
      pthread_attr_getstacksize(&attr, &stack);
      pthread_attr_destroy(&attr);
    }
    const auto needed = [&](int k) {
      const auto n = static_cast<size_t>(k);
      return kBuffer * (std::min<size_t>(n, 64) + n) + (stack + kArena) * (n - 1) + kNets;
    };
    if (!address_space_free(needed(wanted))) {
      threads = 0;
      if (fewer_threads_allowed)
        for (int k = wanted - 1; k >= 1 && threads == 0; --k)
          if (address_space_free(needed(k))) threads = k;
      const std::string why = limits.empty() ? "the machine's memory is committed (strict overcommit)" : limits;
      const std::string what = std::to_string(2 * kBuffer / kMiB) +
                               " MiB of OpenBLAS work buffers per thread, without which it would hang " +
                               "rather than fail, " + std::to_string((stack + kArena) / kMiB) +
                               " MiB of stack and malloc arena per thread past the first, and " +
                               std::to_string(kNets / kMiB) + " MiB for the nets at the least";
      const int asked = fewer_threads_allowed ? 1 : wanted;
      if (threads == 0)
        throw Error("the system refuses the " + std::to_string(needed(asked) / kMiB) + " MiB of memory needed to run " +
                    (fewer_threads_allowed ? "even " : "") + threads_text(asked) + " (" + what + "): " + why + ". " +
                    (limits.empty()
                         ? "Free memory"
                         : "Raise the limit to at least " + std::to_string(limit_needed_mib(needed(asked))) + " MiB") +
                    (fewer_threads_allowed || wanted == 1 ? "" : ", or run fewer threads (--threads)"));
      spdlog::warn("Running {} of {} threads: {}, which leaves room for only {} ({}); {} to use every core", threads,
                   wanted, why, threads_text(threads), what, limits.empty() ? "free memory" : "raise the limit");
      set_num_threads(threads);
    }
  }
  openblas_set_num_threads(threads);
  // Each thread of a parallel region runs its own single-threaded product, taking one buffer
  // (OpenBLAS's OpenMP build); 256³ is past OpenBLAS's small-matrix path, which takes none.
  // The larger product after runs on OpenBLAS's own threads.
  constexpr int kSmall = 256, kLarge = 512;
  std::vector<float> a(static_cast<size_t>(kLarge) * kLarge, 0.f), c(a.size(), 0.f);  // (kLarge, kLarge) each
#pragma omp parallel
  {
    std::vector<float> own(static_cast<size_t>(kSmall) * kSmall, 0.f);  // (kSmall, kSmall)
    cpu_gemm(false, false, kSmall, kSmall, kSmall, 1.f, a.data(), a.data(), 0.f, own.data());
  }
  cpu_gemm(false, false, kLarge, kLarge, kLarge, 1.f, a.data(), a.data(), 0.f, c.data());
}

}  // namespace crema
