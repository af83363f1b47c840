#include "engine/math.hpp"

#include <cblas.h>
#include <omp.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
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

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads = n;
  // oneDNN and crema's loops follow libgomp's pool size; OpenBLAS's is set with its buffers
  // (reserve_blas_buffers).
  omp_set_num_threads(n);
}

int num_threads() {
  return g_threads > 0 ? g_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

// This process's mapped address space (VmSize), in MiB; 0 when unknown.
double mapped_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::atof(line.c_str() + 7) / 1024.0;  // "VmSize:  123456 kB"
  return 0;
}

// RLIMIT_AS in MiB, or a negative number when there is none.
double address_space_limit_mib() {
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1;
  return static_cast<double>(limit.rlim_cur) / (1024.0 * 1024.0);
}

}  // namespace

std::string address_space_limit_note() {
  const double limit = address_space_limit_mib();
  if (limit < 0) return "";
  return " A virtual-memory limit (ulimit -v; SGE's h_vmem sets one) of " + std::to_string(std::lround(limit)) +
         " MiB is set, and " + std::to_string(std::lround(mapped_mib())) +
         " MiB are mapped: raise the limit if the machine has the memory.";
}

namespace {

// Whether `bytes` more of writable private memory can be mapped now. It counts against a
// virtual-memory limit and strict overcommit as OpenBLAS's malloc will; untouched, it costs
// nothing.
bool address_space_free(size_t bytes) {
  void* probe = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return false;
  munmap(probe, bytes);
  return true;
}

}  // namespace

void reserve_blas_buffers(bool fewer_threads_allowed) {
  // OpenBLAS 0.3's BUFFER_SIZE (128 MiB) plus alignment and guard pages. With k threads it
  // keeps one per thread for its own pool's workers and takes one more per concurrent caller
  // (up to k, from crema's parallel regions): 2k at most. Beside them the least room for the
  // nets, threads' stacks and oneDNN's generated code, which crashes inside oneDNN when its
  // mapping is refused: LeNet's training needs about 100 MiB.
  constexpr size_t kBuffer = size_t{129} << 20, kNets = size_t{256} << 20;
  const auto needed = [](int threads) { return 2 * kBuffer * static_cast<size_t>(threads) + kNets; };
  const int wanted = num_threads();
  int threads = wanted;
  if (!address_space_free(needed(wanted))) {
    threads = 0;
    if (fewer_threads_allowed)
      for (int k = wanted - 1; k >= 1 && threads == 0; --k)
        if (address_space_free(needed(k))) threads = k;
    const double limit = address_space_limit_mib();
    const std::string why = limit >= 0 ? "a virtual-memory limit (ulimit -v; SGE's h_vmem sets one) of " +
                                             std::to_string(std::lround(limit)) + " MiB is set and " +
                                             std::to_string(std::lround(mapped_mib())) + " MiB are mapped already"
                                       : "the machine's memory is committed (strict overcommit)";
    const std::string what = std::to_string(2 * (kBuffer >> 20)) + " MiB of OpenBLAS work buffers per thread (it " +
                             "would hang rather than fail without them) and " + std::to_string(kNets >> 20) +
                             " MiB for the nets at the least";
    if (threads == 0)
      throw Error("the system refuses the " + std::to_string(needed(fewer_threads_allowed ? 1 : wanted) >> 20) +
                  " MiB of address space needed to run " +
                  (fewer_threads_allowed ? std::string("even one thread") : std::to_string(wanted) + " threads") +
                  " (" + what + "): " + why + ". " + (limit >= 0 ? "Raise the limit" : "Free memory") +
                  (fewer_threads_allowed || wanted == 1 ? "" : ", or run fewer threads (--threads)"));
    spdlog::warn("Running {} of {} threads: {}, which leaves room for only {} ({}); {} to use every core", threads,
                 wanted, why, threads, what, limit >= 0 ? "raise the limit" : "free memory");
    set_num_threads(threads);
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
