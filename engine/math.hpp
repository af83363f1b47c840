// CPU math on raw float arrays: BLAS wrappers (row-major, OpenBLAS CBLAS) and the few
// vector helpers the layers and solvers share.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace crema {

// C(M,N) = alpha * op(A) * op(B) + beta * C; op(A): (M,K), op(B): (K,N), row-major.
void cpu_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b,
              float beta, float* c);
// y(M or N) = alpha * op(A) * x + beta * y; A: (M,N) row-major.
void cpu_gemv(bool trans_a, int m, int n, float alpha, const float* a, const float* x, float beta, float* y);
void cpu_axpy(int n, float alpha, const float* x, float* y);            // y += alpha x
void cpu_axpby(int n, float alpha, const float* x, float beta, float* y);  // y = alpha x + beta y
void cpu_scale(int n, float alpha, float* x);                          // x *= alpha
void cpu_set(int n, float value, float* x);
void cpu_copy(int n, const float* x, float* y);
// y = Σ_k coeff[k] x[k]; every x[k] and y: (n). y may be one of the x[k] only as x[0].
void cpu_weighted_sum(long n, const std::vector<const float*>& x, const std::vector<float>& coeff, float* y);
float cpu_dot(int n, const float* x, const float* y);
float cpu_asum(int n, const float* x);
// How many of x(n) are NaN or infinite.
long long cpu_count_non_finite(long long n, const float* x);

// Element loops over fewer values than this run on one thread: below it, waking the
// OpenMP pool costs more than the loop (a few microseconds against ~1 ns a value).
constexpr long kParallelMinElements = 1L << 15;

// The CPUs this process may run on: a Slurm job's cpuset or `taskset`'s, not the machine's
// (std::thread::hardware_concurrency counts every CPU of the node, and an OpenMP pool that
// large on a job's few cores makes every step many times slower), and no more than a cgroup
// CPU quota grants (Docker's --cpus, a Kubernetes CPU limit), rounded up. At least 1; found
// once, at the first call.
int available_cores();

// The CPU time this process's cgroups grant, in CPUs (cgroup v2's cpu.max, v1's
// cpu.cfs_quota_us / cpu.cfs_period_us; the smallest over the process's folder and those above
// it); nothing when none is set or the cgroup files are not there. `root` is prefixed to every
// path read (/proc/self/cgroup, /proc/self/mountinfo, the mount points), for tests.
std::optional<double> cgroup_cpu_quota(const std::string& root);

// Threads used by BLAS, oneDNN and crema's loops; <= 0 means available_cores().
void set_num_threads(int n);
int num_threads();

// OpenBLAS takes work buffers of about 129 MiB per thread at its first products and, when the
// system refuses one (a virtual-memory limit such as `ulimit -v` or SGE's h_vmem, or strict
// overcommit), retries for ever at full speed: the run hangs, deaf to SIGTERM. This sets
// OpenBLAS's thread count to num_threads() once the room for its buffers is known to be there
// (with `fewer_threads_allowed`, to as many threads as fit, with a warning), throws an Error
// saying what is missing when not, and has every thread take its buffers now so that the
// products later reuse them. Call before the nets are built.
void reserve_blas_buffers(bool fewer_threads_allowed);
// " A virtual-memory limit (ulimit -v) of N MiB is set, and M MiB are mapped." or "" without a limit:
// for out-of-memory messages, where the limit, not the machine, may be what ran out.
std::string address_space_limit_note();

}  // namespace crema
