#include "engine/math.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

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
  // OpenBLAS's OpenMP build and oneDNN share libgomp's pool; both follow its size.
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() {
  return g_threads > 0 ? g_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace crema
