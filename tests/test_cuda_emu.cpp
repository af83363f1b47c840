// The CUDA emulation's own checks (tests/cuda_emu/README.md), in the emulation build
// only: what it must catch for the GPU tests run on it to mean anything. Each case
// commits the mistake on purpose and expects the emulation to report it.
#include "tests/cuda_emu/cuda_emu.hpp"  // first: it defines __shared__ for the CUDA headers

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "engine/cuda/cuda_context.hpp"
#include "engine/cuda/cuda_runtime_api.hpp"
#include "engine/error.hpp"
#include "engine/cuda/math_kernels.hpp"
#include "tests/cuda_emu/emu_memory.hpp"
#include "layers/cuda/neuron_kernels.hpp"

using namespace crema;

namespace {

constexpr int kThreadsPerBlock = 64;

// A block's sum by halving, in shared memory: correct only with its barriers.
void block_sum(const float* x, float* out, bool with_barriers) {  // x: (kThreadsPerBlock), out: (1)
  __shared__ float partial[kThreadsPerBlock];
  partial[threadIdx.x] = x[threadIdx.x];
  if (with_barriers) __syncthreads();
  for (unsigned half = kThreadsPerBlock / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    if (with_barriers) __syncthreads();
  }
  if (threadIdx.x == 0) *out = partial[0];
}

// A barrier inside a branch that only some of the block's threads take.
void divergent_barrier(float* out) {  // out: (1)
  if (threadIdx.x < 3) __syncthreads();
  if (threadIdx.x == 0) *out = 1.f;
}

// Each warp's sum by shuffles, written by the warp's first lane.
void warp_sums(const float* x, float* out) {  // x: (kThreadsPerBlock), out: (kThreadsPerBlock / 32)
  float v = x[threadIdx.x];
  for (unsigned offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = v;
}

// Only block 0 writes the shared cell; every block reads it. (The call after the
// declaration is what rewrite_launches.py adds to crema's kernels.)
void read_shared_cell(float* out) {  // out: (gridDim.x)
  __shared__ float cell;
  crema_emu::fresh_shared(&cell, sizeof cell);
  if (threadIdx.x == 0 && blockIdx.x == 0) cell = 1.f;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = cell;
}

// Reads the element just past x's n: the off-by-one of a kernel whose loop runs to <= n.
void read_one_past(const float* x, float* out, int n) {  // x: (n), out: (1)
  if (threadIdx.x == 0) *out = x[n];
}

struct DeviceBuffer {
  explicit DeviceBuffer(size_t floats) : p(static_cast<float*>(cuda::alloc_device(floats * sizeof(float), &device))) {}
  ~DeviceBuffer() { cuda::free_device(p, device); }
  int device = -1;
  float* p;
};

// Copies 4 floats from `from` to `to` on `stream`, waits for that stream alone, and
// reads `to` back with cudaMemcpy, which waits for none of crema's streams.
std::vector<float> copied_on(void* stream, const void* from, void* to) {
  std::vector<float> out(4);
  cuda::copy_async(to, from, 4 * sizeof(float), stream);
  cuda::synchronize_stream(stream);
  REQUIRE(cudaMemcpy(out.data(), to, 4 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  return out;
}

std::vector<float> ramp(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  return v;
}

}  // namespace

TEST_CASE("CUDA emulation: a block's barriers order its threads, and a missing one shows") {
  const std::vector<float> x = ramp(kThreadsPerBlock);
  DeviceBuffer dx(kThreadsPerBlock), out(1);
  cuda::copy_to_device(dx.p, x.data(), x.size() * sizeof(float));
  float sum = 0;
  // Without them thread 0 reads partners that have not written yet. (First: shared
  // memory is a static here, so a correct run before would have left the partial sums.)
  crema_emu::launch("block_sum", dim3(1), dim3(kThreadsPerBlock), 0, nullptr, &block_sum, dx.p, out.p, false);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  cuda::copy_to_host(&sum, out.p, sizeof sum);
  CHECK(sum != kThreadsPerBlock * (kThreadsPerBlock + 1) / 2);
  crema_emu::launch("block_sum", dim3(1), dim3(kThreadsPerBlock), 0, nullptr, &block_sum, dx.p, out.p, true);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  cuda::copy_to_host(&sum, out.p, sizeof sum);
  CHECK(sum == kThreadsPerBlock * (kThreadsPerBlock + 1) / 2);
}

TEST_CASE("CUDA emulation: a barrier only some threads reach is a launch failure") {
  DeviceBuffer out(1);
  crema_emu::launch("divergent_barrier", dim3(2), dim3(32), 0, nullptr, &divergent_barrier, out.p);
  CHECK(cudaGetLastError() == cudaSuccess);  // queued: it has not run yet
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);  // sticky, as a device fault
  crema_emu::clear_device_error();                       // so that this process's later cases can run
}

TEST_CASE("CUDA emulation: a device fault names the call that met it and says it may be an earlier kernel's") {
  DeviceBuffer out(1);
  crema_emu::launch("divergent_barrier", dim3(2), dim3(32), 0, nullptr, &divergent_barrier, out.p);
  float host = 0;
  std::string message;
  try {
    cuda::copy_to_host(&host, out.p, sizeof host);  // the first call that waits for the device
  } catch (const Error& e) {
    message = e.what();
  }
  crema_emu::clear_device_error();
  CHECK(message.find("cudaDeviceSynchronize() failed: ") != std::string::npos);
  CHECK(message.find("possibly an earlier layer's kernel, not this call's; run again with CREMA_CUDA_SYNC=1") !=
        std::string::npos);
}

TEST_CASE("CUDA emulation: warp shuffles exchange within each warp") {
  const std::vector<float> x = ramp(kThreadsPerBlock);
  DeviceBuffer dx(kThreadsPerBlock), out(2);
  cuda::copy_to_device(dx.p, x.data(), x.size() * sizeof(float));
  crema_emu::launch("warp_sums", dim3(1), dim3(kThreadsPerBlock), 0, nullptr, &warp_sums, dx.p, out.p);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  float sums[2];
  cuda::copy_to_host(sums, out.p, sizeof sums);
  CHECK(sums[0] == 32 * 33 / 2);               // 1 + … + 32
  CHECK(sums[1] == 32 * 33 / 2 + 32 * 32);     // 33 + … + 64
}

TEST_CASE("CUDA emulation: a host pointer given to a kernel stops the launch, naming the kernel") {
  auto ctx = cuda::CudaContext::create(0);
  std::vector<float> host(16, 1.f);
  DeviceBuffer y(16);
  std::string what;
  try {
    cuda::relu_forward(*ctx, 16, 0.f, host.data(), y.p);
  } catch (const Error& e) {
    what = e.what();
  }
  CHECK(what.find("ReluForward") != std::string::npos);  // the launch names the formula's type
  CHECK(what.find("is host memory, not device memory") != std::string::npos);
}

TEST_CASE("CUDA emulation: copies and cuBLAS calls past an allocation's end are refused") {
  auto ctx = cuda::CudaContext::create(0);
  // Through the caching allocator, as blobs get theirs: in the emulation build its blocks
  // are of the exact size asked for, where size classes would round 64 bytes up to 512.
  std::vector<float> host(20, 1.f);
  DeviceBuffer a(16), b(16), c(20);
  CHECK_THROWS_WITH_AS(cuda::copy_to_device(a.p, host.data(), 17 * sizeof(float)),
                       doctest::Contains("4 bytes past the end of its 64-byte allocation"), Error);
  cuda::copy_to_device(a.p, host.data(), 16 * sizeof(float));
  cuda::copy_to_device(b.p, host.data(), 16 * sizeof(float));
  // 4 x 4 times 4 x 5 reads 20 floats of b, which holds 16.
  CHECK_THROWS_WITH_AS(cuda::gpu_gemm(*ctx, false, false, 4, 5, 4, 1.f, a.p, b.p, 0.f, c.p),
                       doctest::Contains("cublasSgemm"), Error);
}

TEST_CASE("CUDA emulation: under AddressSanitizer a kernel reading past its data stops with ASan's report") {
#if defined(__SANITIZE_ADDRESS__)
  DeviceBuffer x(10), out(1);
  CHECK(__asan_address_is_poisoned(x.p + 9) == 0);
  CHECK(__asan_address_is_poisoned(x.p + 10) != 0);  // inside CUDA's 256-byte alignment, yet poisoned
  // The mistake itself, in a child process: ASan ends the process that makes it.
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  std::fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    crema_emu::launch("read_one_past", dim3(1), dim3(32), 0, nullptr, &read_one_past, x.p, out.p, 10);
    cudaDeviceSynchronize();
    _exit(0);  // not reached when ASan catches the read
  }
  close(pipe_fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t got; (got = read(pipe_fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(got));
  close(pipe_fds[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(report.find("ERROR: AddressSanitizer") != std::string::npos);
  CHECK(report.find("READ of size 4") != std::string::npos);
  CHECK(report.find("read_one_past") != std::string::npos);
#else
  MESSAGE(
      "SKIPPED: this build is not under AddressSanitizer (scripts/test.sh builds build-emu with "
      "-DCREMA_SANITIZE=address,undefined)");
#endif
}

TEST_CASE("CUDA emulation: fresh device memory reads as NaN") {
  // Straight from cudaMalloc: the caching allocator may hand out a block used before.
  void* a = cuda::alloc_device_uncached(4 * sizeof(float));
  float v[4];
  cuda::copy_to_host(v, a, sizeof v);
  cuda::free_device_uncached(a, 0);
  for (const float x : v) CHECK(x != x);
}

TEST_CASE("CUDA emulation: a stream's work waits until the host, or a stream through an event, waits for it") {
  void* s1 = cuda::create_stream(0);
  void* s2 = cuda::create_stream(0);
  void* done = cuda::create_event(0);
  auto* pinned = static_cast<float*>(cuda::alloc_pinned(4 * sizeof(float)));
  for (int i = 0; i < 4; ++i) pinned[i] = static_cast<float>(i + 1);
  void* a = cuda::alloc_device_uncached(4 * sizeof(float));
  void* b = cuda::alloc_device_uncached(4 * sizeof(float));
  // s2 copies a before s1 has filled it: nothing ordered the two streams.
  cuda::copy_async(a, pinned, 4 * sizeof(float), s1);
  CHECK(std::isnan(copied_on(s2, a, b)[0]));  // still the NaN of fresh memory
  // With an event recorded after the fill and waited for by s2, the copy sees it.
  cuda::record_event(done, s1);
  cuda::wait_event(s2, done);
  CHECK(copied_on(s2, a, b)[3] == 4.f);
  cuda::free_device_uncached(a, 0);
  cuda::free_device_uncached(b, 0);
  cuda::free_pinned(pinned);
  cuda::destroy_event(done);
  cuda::destroy_stream(s1);
  cuda::destroy_stream(s2);
}

TEST_CASE("CUDA emulation: cudaMemset returns before it is done, and crema's streams do not wait for it") {
  void* s = cuda::create_stream(0);
  void* a = cuda::alloc_device_uncached(4 * sizeof(float));
  void* b = cuda::alloc_device_uncached(4 * sizeof(float));
  REQUIRE(cudaMemset(a, 0, 4 * sizeof(float)) == cudaSuccess);  // queued on the legacy default stream
  // A non-blocking stream is not ordered after it: the copy runs first and finds NaN.
  CHECK(std::isnan(copied_on(s, a, b)[0]));
  cuda::zero_device(a, 4 * sizeof(float));  // crema's own: waits on both sides
  CHECK(copied_on(s, a, b)[0] == 0.f);
  cuda::free_device_uncached(a, 0);
  cuda::free_device_uncached(b, 0);
  cuda::destroy_stream(s);
}

TEST_CASE("CUDA emulation: each block finds its shared memory unwritten, not the last block's values") {
  DeviceBuffer out(2);
  crema_emu::launch("read_shared_cell", dim3(2), dim3(32), 0, nullptr, &read_shared_cell, out.p);
  float v[2];
  cuda::copy_to_host(v, out.p, sizeof v);
  CHECK(v[0] == 1.f);
  CHECK(std::isnan(v[1]));  // block 1 never wrote the cell
}
