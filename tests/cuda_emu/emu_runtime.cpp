// The host side of the CUDA emulation (tests/cuda_emu/README.md): the part of the CUDA
// runtime, cuBLAS and cuDNN that crema calls, implemented on the host, and the
// scheduler that runs emulated kernels (cuda_emu.hpp). One emulated device, device 0.
//
// Work given to a stream waits in that stream's queue until the host waits for it (see
// "queued work" below), so a missing wait shows as a value not yet computed or copied.
// Besides computing, it checks what a real device would only fault on, or not at all:
// kernel pointer arguments and cuBLAS/cuDNN data must be device memory (not host
// memory, not freed), copies must stay inside their allocations and go the way their
// kind says, a __syncthreads must be reached by all of a block's threads or none, and
// fresh device memory reads as NaN so that a result built on unwritten memory shows.
// Every such finding is an error from the call (or the launch) with a message naming
// the kernel or call, which crema's checks then turn into an exception.
// First: it defines __shared__ before the CUDA headers would.
#include "tests/cuda_emu/cuda_emu.hpp"
// Then the rest.
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <omp.h>
#include <sys/mman.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"

namespace crema_emu {
namespace {

constexpr size_t kDeviceMemory = size_t{16} << 30;  // what the emulated device reports
constexpr size_t kFiberStack = 256 << 10;

// ---- errors --------------------------------------------------------------------

thread_local cudaError_t last_error = cudaSuccess;
std::mutex message_mutex;
std::string last_message;  // the latest finding, for cudaGetErrorString

cudaError_t fail(cudaError_t e, const std::string& what) {
  std::fprintf(stderr, "cuda emulation: %s\n", what.c_str());
  {
    std::lock_guard<std::mutex> lock(message_mutex);
    last_message = what;
  }
  last_error = e;
  return e;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// ---- memory ------------------------------------------------------------------------

enum class Space { device, pinned, pageable };

struct Region {
  size_t bytes;
  Space space;
};

std::mutex memory_mutex;
std::map<uintptr_t, Region> regions;  // by base address
size_t device_in_use = 0;

// Where [p, p + bytes) lies; *why says what is wrong when a device or pinned range runs
// past its allocation's end.
Space space_of(const void* p, size_t bytes, std::string* why) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(memory_mutex);
  auto it = regions.upper_bound(a);
  if (it == regions.begin()) return Space::pageable;
  --it;
  const uintptr_t base = it->first;
  const Region& r = it->second;
  // A pointer one past the end of an allocation is still its pointer (an empty tail).
  if (a > base + r.bytes) return Space::pageable;
  if (a + bytes > base + r.bytes)
    *why = hex(p) + " + " + std::to_string(bytes) + " bytes runs " + std::to_string(a + bytes - base - r.bytes) +
           " bytes past the end of its " + std::to_string(r.bytes) + "-byte allocation";
  return r.space;
}

const char* space_name(Space s) {
  return s == Space::device ? "device memory" : s == Space::pinned ? "pinned host memory" : "host memory";
}

// Device memory for [p, p + bytes): an error naming `what` otherwise.
bool require_device(const void* p, size_t bytes, const std::string& what) {
  std::string why;
  const Space s = space_of(p, bytes, &why);
  if (s != Space::device) {
    fail(cudaErrorIllegalAddress, what + ": " + hex(p) + " is " + space_name(s) + ", not device memory");
    return false;
  }
  if (!why.empty()) {
    fail(cudaErrorIllegalAddress, what + ": " + why);
    return false;
  }
  return true;
}

// Under AddressSanitizer (a build with -fsanitize=address), the bytes of an allocation
// past what was asked for are poisoned, so that a kernel reading or writing past the end
// of its data fails at once with ASan's report instead of using the padding of CUDA's
// 256-byte alignment. (crema's caching allocator asks the emulation for blocks of the
// exact size it needs: Backend::exact_sizes.)
void set_poisoned(const void* p, size_t bytes, bool poisoned) {
#if defined(__SANITIZE_ADDRESS__)
  if (poisoned)
    ASAN_POISON_MEMORY_REGION(p, bytes);
  else
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
  (void)p, (void)bytes, (void)poisoned;
#endif
}

size_t rounded_size(size_t bytes) { return (std::max<size_t>(bytes, 1) + 255) / 256 * 256; }

void* allocate(size_t bytes, Space space) {
  const size_t rounded = rounded_size(bytes);
  void* p = std::aligned_alloc(256, rounded);
  if (!p) return nullptr;
  // Fresh device memory is not zero on a real device either: NaN shows a read of it.
  std::memset(p, space == Space::device ? 0xff : 0, rounded);
  set_poisoned(static_cast<char*>(p) + bytes, rounded - bytes, true);
  std::lock_guard<std::mutex> lock(memory_mutex);
  regions[reinterpret_cast<uintptr_t>(p)] = Region{bytes, space};
  if (space == Space::device) device_in_use += bytes;
  return p;
}

bool release(void* p, Space space) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  const auto it = regions.find(reinterpret_cast<uintptr_t>(p));
  if (it == regions.end() || it->second.space != space) return false;
  if (space == Space::device) device_in_use -= it->second.bytes;
  set_poisoned(p, rounded_size(it->second.bytes), false);
  regions.erase(it);
  std::free(p);
  return true;
}

// ---- streams and events ------------------------------------------------------------

std::mutex handle_mutex;
std::set<const void*> streams, events;

bool known(const std::set<const void*>& set, const void* h) {
  std::lock_guard<std::mutex> lock(handle_mutex);
  return set.count(h) != 0;
}

// A fresh opaque handle (a stream or an event), entered in `set`. Handles are never
// reused: a new stream at a destroyed one's address would inherit its queued work and
// the events recorded on it.
void* new_handle(std::set<const void*>& set) {
  static std::atomic<uintptr_t> next{0};
  void* h = reinterpret_cast<void*>(uintptr_t{0x7e0000000000} + 64 * ++next);  // never dereferenced
  std::lock_guard<std::mutex> lock(handle_mutex);
  set.insert(h);
  return h;
}
// Whether `h` was in `set` (and is not any more).
bool drop_handle(std::set<const void*>& set, const void* h) {
  std::lock_guard<std::mutex> lock(handle_mutex);
  return set.erase(h) != 0;
}

// The legacy default stream (null) or a stream created and not yet destroyed.
bool valid_stream(cudaStream_t s, const char* call) {
  if (s == nullptr || known(streams, s)) return true;
  fail(cudaErrorInvalidResourceHandle, std::string(call) + ": stream " + hex(s) + " was never created or is destroyed");
  return false;
}

// ---- copies ------------------------------------------------------------------------

// Checks a copy's ranges and direction; *d and *s receive where its ends lie.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* call,
                       Space* dst_space, Space* src_space) {
  std::string why_dst, why_src;
  const Space d = *dst_space = space_of(dst, bytes, &why_dst), s = *src_space = space_of(src, bytes, &why_src);
  if (!why_dst.empty()) return fail(cudaErrorInvalidValue, std::string(call) + " destination: " + why_dst);
  if (!why_src.empty()) return fail(cudaErrorInvalidValue, std::string(call) + " source: " + why_src);
  const bool want_dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault) {
    if ((d == Space::device) != want_dst_device)
      return fail(cudaErrorInvalidValue, std::string(call) + ": the destination " + hex(dst) + " is " + space_name(d) +
                                             ", against the copy's kind");
    if ((s == Space::device) != want_src_device)
      return fail(cudaErrorInvalidValue, std::string(call) + ": the source " + hex(src) + " is " + space_name(s) +
                                             ", against the copy's kind");
  }
  return cudaSuccess;
}

// ---- queued work ---------------------------------------------------------------------
// Kernels, asynchronous copies and memsets, cuBLAS and cuDNN calls wait in their
// stream's queue, in order, until the host waits for them: the stream, an event recorded
// after them or the whole device synchronised, a call that must see them (cudaFree, a
// copy into pageable memory, cublasSdot), or another stream reaching a
// cudaStreamWaitEvent on them. A result crema reads without waiting for it has then not
// been computed yet, as on a device still busy, instead of being right by luck.

struct Queue {
  std::deque<std::function<void()>> work;
  uint64_t queued = 0, done = 0;  // items ever queued and run
};
std::recursive_mutex device_mutex;                                 // held while work is queued or run
std::map<const void*, Queue> queues;                               // by stream; null is the legacy default stream
std::map<const void*, std::pair<const void*, uint64_t>> recorded;  // event -> (stream, items before it)
std::atomic<int> device_error{cudaSuccess};  // a failure inside queued work: sticky, as a device fault

// Runs `stream`'s work until `count` items have run.
void run_until(const void* stream, uint64_t count) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  Queue& q = queues[stream];
  while (q.done < count && !q.work.empty()) {
    std::function<void()> item = std::move(q.work.front());
    q.work.pop_front();
    ++q.done;
    item();
  }
}
void drain(const void* stream) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  run_until(stream, queues[stream].queued);
}
void drain_all() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  for (auto& [stream, q] : queues) run_until(stream, q.queued);
}
// Returns how many items `stream` has had queued, this one included.
uint64_t queue_work(const void* stream, std::function<void()> item) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  Queue& q = queues[stream];
  q.work.push_back(std::move(item));
  return ++q.queued;
}

// A failure found while queued work ran: from then on every call that reports errors
// reports it, on every thread, as a fault poisons a real device's context.
void fail_in_queue(cudaError_t e, const std::string& what) {
  const cudaError_t saved = last_error;
  fail(e, what);
  last_error = saved;  // it belongs to the device, not to whichever thread ran the work
  device_error = e;
}
cudaError_t device_status() { return static_cast<cudaError_t>(device_error.load()); }

// An asynchronous copy, checked now. Between two host buffers it is done at the call
// (CUDA makes those synchronous); from pageable memory the source is read now (the
// runtime stages it before returning); into pageable memory the call returns only once
// the stream has reached it; between device and pinned memory it is queued.
cudaError_t copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream,
                       const char* call) {
  if (!valid_stream(stream, call)) return last_error;
  if (bytes == 0) return cudaSuccess;
  Space d = Space::pageable, s = Space::pageable;
  if (const cudaError_t e = check_copy(dst, src, bytes, kind, call, &d, &s); e != cudaSuccess) return e;
  if (d != Space::device && s != Space::device) {
    drain(stream);
    std::memmove(dst, src, bytes);
  } else if (s == Space::pageable) {
    auto staged =
        std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    queue_work(stream, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  } else if (d == Space::pageable) {
    drain(stream);
    std::memmove(dst, src, bytes);
  } else {
    queue_work(stream, [dst, src, bytes] { std::memmove(dst, src, bytes); });
  }
  return cudaSuccess;
}

// ---- the kernel scheduler ----------------------------------------------------------

// Switching between device threads: glibc's swapcontext also saves the signal mask,
// a system call per switch, which made reductions (a barrier per step, 256 threads)
// dominate the tests' time. This switch saves only what the x86-64 SysV ABI says a
// call preserves (rbx, rbp, r12-r15 and the stack pointer; the kernels leave the
// floating-point control words alone) and jumps.
#if !defined(__x86_64__)
#error "the CUDA emulation's thread switch is written for x86-64"
#endif
extern "C" void crema_emu_switch(void** save_sp, void* next_sp);
asm(R"(
  .text
  .p2align 4
  .type crema_emu_switch, @function
crema_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size crema_emu_switch, .-crema_emu_switch
)");

// A stack's memory, [bottom, bottom + size): what AddressSanitizer is told at each switch.
struct StackSpan {
  const void* bottom = nullptr;
  size_t size = 0;
};

// Switches this host thread from the running stack (its stack pointer saved in *save_sp)
// to the one saved in next_sp, whose memory is `next`. Under AddressSanitizer the switch
// is announced, so that it checks against the right stack (`leaving`: the running
// fiber has ended and is never resumed); *came_from receives, once this stack is resumed,
// the stack that switched back to it.
void switch_stack(void** save_sp, void* next_sp, StackSpan next, bool leaving, StackSpan* came_from) {
#if defined(__SANITIZE_ADDRESS__)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(leaving ? nullptr : &fake_stack, next.bottom, next.size);
  crema_emu_switch(save_sp, next_sp);
  __sanitizer_finish_switch_fiber(fake_stack, came_from ? &came_from->bottom : nullptr,
                                  came_from ? &came_from->size : nullptr);
#else
  (void)next, (void)leaving, (void)came_from;
  crema_emu_switch(save_sp, next_sp);
#endif
}

// A fiber's stack, with an inaccessible page below it: an overflow faults at once
// instead of overwriting the heap.
class Stack {
 public:
  Stack() {
    void* p = mmap(nullptr, kFiberStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, kGuard, PROT_NONE);
    base_ = static_cast<char*>(p);
  }
  ~Stack() { munmap(base_, kFiberStack + kGuard); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  char* top() const { return base_ + kGuard + kFiberStack; }
  StackSpan span() const { return StackSpan{base_ + kGuard, kFiberStack}; }

 private:
  static constexpr size_t kGuard = 4096;
  char* base_;
};

struct Fiber {
  void* sp = nullptr;  // saved stack pointer while switched out
  std::unique_ptr<Stack> stack;
  bool done = false;
};

// The launch running on this host thread. Each block runs its first thread first, as a
// fiber; if it ends without a __syncthreads, the block never synchronises (CUDA requires
// all of a block's threads or none to reach one), and the other threads run as plain
// calls, which is most kernels and much faster. Otherwise every thread becomes a fiber
// and they run in rounds, each round from one barrier to the next. Every other launch
// runs its threads in descending order, so that a barrier missing between one thread's
// write and another's read shows whichever of the two has the lower index.
struct Launch {
  const std::function<void()>* thread = nullptr;
  std::vector<Fiber> fibers;
  void* scheduler_sp = nullptr;
  StackSpan scheduler_stack;  // the host thread's own stack, which the fibers switch back to
  unsigned current = 0;
  bool running = false;
  bool plain = false;           // the current thread runs as a plain call
  bool divergent = false;       // a __syncthreads reached by only some threads
  bool descending = false;      // this launch's thread order
  uint64_t block = 0;           // the running block's serial number, for fresh_shared
  std::vector<uint64_t> lanes;  // the values of a warp shuffle
};
thread_local Launch launch_state;
std::atomic<uint64_t> blocks_run{0};  // every block of every launch: a serial number each

// Where a fiber starts (crema_emu_switch "returns" into it); it never returns, it
// switches back to the scheduler for good once the thread has run.
[[noreturn]] void fiber_main() {
  Launch& l = launch_state;
#if defined(__SANITIZE_ADDRESS__)
  // The first arrival on this stack (later ones return from switch_stack).
  __sanitizer_finish_switch_fiber(nullptr, &l.scheduler_stack.bottom, &l.scheduler_stack.size);
#endif
  (*l.thread)();
  Fiber& f = l.fibers[l.current];
  f.done = true;
  switch_stack(&f.sp, l.scheduler_sp, l.scheduler_stack, true, nullptr);
  std::abort();  // not reached: a finished fiber is never resumed
}

void start_fiber(Launch& l, unsigned t) {
  Fiber& f = l.fibers[t];
  if (!f.stack) f.stack = std::make_unique<Stack>();
  // The top of the stack as crema_emu_switch pops it: six saved registers, then the
  // "return address" fiber_main, above it a null one for fiber_main itself, so that
  // fiber_main starts with the stack aligned as after a call.
  auto top = reinterpret_cast<uintptr_t>(f.stack->top()) & ~uintptr_t{15};
  auto* slots = reinterpret_cast<void**>(top);
  slots[-1] = nullptr;
  slots[-2] = reinterpret_cast<void*>(&fiber_main);
  for (int i = 3; i <= 8; ++i) slots[-i] = nullptr;
  f.sp = &slots[-8];
  f.done = false;
}

void resume(Launch& l, unsigned t) {
  l.current = t;
  threadIdx = uint3{t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
  switch_stack(&l.scheduler_sp, l.fibers[t].sp, l.fibers[t].stack->span(), false, nullptr);
}

void run_block(Launch& l, unsigned threads) {
  if (l.fibers.size() < threads) l.fibers.resize(threads);
  // The i-th thread to run, in this launch's order.
  const auto nth = [&l, threads](unsigned i) { return l.descending ? threads - 1 - i : i; };
  start_fiber(l, nth(0));
  resume(l, nth(0));
  if (l.fibers[nth(0)].done) {
    l.plain = true;
    for (unsigned i = 1; i < threads; ++i) {
      const unsigned t = nth(i);
      l.current = t;
      threadIdx = uint3{t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
      (*l.thread)();
    }
    l.plain = false;
    return;
  }
  for (unsigned i = 1; i < threads; ++i) {
    start_fiber(l, nth(i));
    resume(l, nth(i));
  }
  for (;;) {
    unsigned waiting = 0, finished = 0;
    for (unsigned t = 0; t < threads; ++t) (l.fibers[t].done ? finished : waiting) += 1;
    if (waiting == 0) return;
    // Some threads wait at a barrier that others ended without reaching.
    if (finished != 0) l.divergent = true;
    for (unsigned i = 0; i < threads; ++i)
      if (!l.fibers[nth(i)].done) resume(l, nth(i));
  }
}

}  // namespace

// cuBLAS's and cuDNN's findings are theirs: printed and spelt out by cudnnGetErrorString,
// but not the runtime's error, which a later launch check would report as its own.
void report(const std::string& what) {
  const cudaError_t saved = last_error;
  fail(cudaErrorInvalidValue, what);
  last_error = saved;
}
std::string latest_finding() {
  std::lock_guard<std::mutex> lock(message_mutex);
  return last_message;
}

float to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  // Drop 13 of the 23 mantissa bits, rounding to nearest with ties to even (a carry
  // into the exponent is the correct rounding up; near FLT_MAX it gives infinity).
  bits += 0x0fffu + ((bits >> 13) & 1u);
  bits &= ~0x1fffu;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}
std::vector<float> to_tf32(const float* x, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = to_tf32(x[i]);
  return out;
}

// OpenBLAS's OpenMP build asks omp_get_max_threads() at each call, which follows this
// thread's setting.
SingleThreadedBlas::SingleThreadedBlas() : previous_(omp_get_max_threads()) { omp_set_num_threads(1); }
SingleThreadedBlas::~SingleThreadedBlas() { omp_set_num_threads(previous_); }
bool device_data(const void* p, size_t bytes, const std::string& what) {
  const cudaError_t saved = last_error;
  const bool ok = require_device(p, bytes, what);
  last_error = saved;
  return ok;
}

void sync_threads() {
  Launch& l = launch_state;
  if (!l.running || l.plain) {  // thread 0 ended without it: a barrier only some reach
    l.divergent = true;
    return;
  }
  switch_stack(&l.fibers[l.current].sp, l.scheduler_sp, l.scheduler_stack, false, &l.scheduler_stack);
}

void fresh_shared(void* p, size_t bytes) {
  // Kernels run under device_mutex (run_until), so the map needs no lock of its own.
  static std::map<const void*, uint64_t> filled_in;  // shared variable -> block that last filled it
  const uint64_t block = launch_state.block;
  uint64_t& filled = filled_in[p];
  if (filled == block) return;  // another thread of this block got here first
  filled = block;
  std::memset(p, 0xff, bytes);
}

uint64_t shuffle_down(uint64_t bits, unsigned delta) {
  Launch& l = launch_state;
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  if (l.lanes.size() < threads) l.lanes.resize(threads);
  const unsigned t = l.current;
  l.lanes[t] = bits;
  sync_threads();
  const unsigned lane = t % 32;
  const uint64_t out = lane + delta < 32 && t + delta < threads ? l.lanes[t + delta] : bits;
  sync_threads();  // every thread has read before the next shuffle writes
  return out;
}

namespace {

// Runs one launch, block after block, on the calling thread.
void run_launch(const std::string& name, dim3 grid, dim3 block, const std::function<void()>& thread) {
  static std::atomic<unsigned> launches{0};
  Launch& l = launch_state;
  l.thread = &thread;
  l.running = true;
  l.divergent = false;
  l.descending = launches++ % 2 == 1;
  gridDim = grid;
  blockDim = block;
  const unsigned threads = block.x * block.y * block.z;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        l.block = ++blocks_run;
        run_block(l, threads);
        if (l.divergent) {
          l.running = false;
          fail_in_queue(cudaErrorLaunchFailure, name + ": a __syncthreads in block (" + std::to_string(x) + ", " +
                                                    std::to_string(y) + ", " + std::to_string(z) +
                                                    ") is reached by only some of its threads");
          return;
        }
      }
  l.running = false;
}

}  // namespace

namespace {

// With CREMA_EMU_LAUNCH_LOG=FILE, each kernel is appended to FILE the first time the
// process launches it, as its offset in the executable and the executable's path (which
// tests/cuda_emu/coverage.py names from the symbol table: kernels in anonymous
// namespaces have no dynamic symbol), then its launch description.
void log_launch(const char* kernel, const void* entry) {
  static const char* path = std::getenv("CREMA_EMU_LAUNCH_LOG");
  if (!path) return;
  static std::mutex mutex;
  static std::set<const void*> seen;
  std::lock_guard<std::mutex> lock(mutex);
  if (!seen.insert(entry).second) return;
  Dl_info info{};
  if (!dladdr(entry, &info) || !info.dli_fname) return;
  if (FILE* f = std::fopen(path, "a")) {
    const auto offset = reinterpret_cast<uintptr_t>(entry) - reinterpret_cast<uintptr_t>(info.dli_fbase);
    std::fprintf(f, "%lx %s %s\n", static_cast<unsigned long>(offset), info.dli_fname, kernel);
    std::fclose(f);
  }
}

}  // namespace

void run_grid(const char* kernel, const void* entry, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
              std::function<void()> thread, const void* const* pointers, size_t pointer_count) {
  log_launch(kernel, entry);
  const std::string name = std::string("kernel ") + kernel;
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024 || grid.y > 65535 || grid.z > 65535 ||
      block.z > 64 || shared_bytes > 48 * 1024) {
    fail(cudaErrorInvalidConfiguration, name + ": launch configuration grid (" + std::to_string(grid.x) + ", " +
                                            std::to_string(grid.y) + ", " + std::to_string(grid.z) + "), block (" +
                                            std::to_string(block.x) + ", " + std::to_string(block.y) + ", " +
                                            std::to_string(block.z) + ") is invalid");
    return;
  }
  if (!valid_stream(stream, name.c_str())) return;
  for (size_t i = 0; i < pointer_count; ++i)
    if (pointers[i] && !require_device(pointers[i], 0, name + " pointer argument " + std::to_string(i + 1))) return;
  if (launch_state.running) {
    fail(cudaErrorLaunchFailure, name + ": launched from inside a kernel");
    return;
  }
  queue_work(stream, [name, grid, block, thread = std::move(thread)] { run_launch(name, grid, block, thread); });
}

void clear_device_error() { device_error = cudaSuccess; }
void enqueue(cudaStream_t stream, std::function<void()> work) { queue_work(stream, std::move(work)); }
void wait_for(cudaStream_t stream) { drain(stream); }

}  // namespace crema_emu

using namespace crema_emu;

// ---- CUDA runtime ------------------------------------------------------------------

namespace {
thread_local int current_device = 0;
thread_local std::string error_text;
}  // namespace

cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e != cudaSuccess ? e : device_status();
}
cudaError_t cudaPeekAtLastError() {
  return last_error != cudaSuccess ? last_error : static_cast<cudaError_t>(device_error.load());
}

const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaSuccess) return "no error";
  std::lock_guard<std::mutex> lock(message_mutex);
  error_text = "emulated CUDA error " + std::to_string(static_cast<int>(e)) +
               (last_message.empty() ? std::string() : ": " + last_message);
  return error_text.c_str();
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): one device");
  current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = current_device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  drain_all();
  return device_status();
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: one device");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "crema CUDA emulation (host)");
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = kDeviceMemory;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: one device");
  *value = attr == cudaDevAttrClockRate              ? 1000000
           : attr == cudaDevAttrMemoryClockRate      ? 1000000
           : attr == cudaDevAttrGlobalMemoryBusWidth ? 64
                                                     : 0;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  *total = kDeviceMemory;
  *free_bytes = kDeviceMemory - std::min(device_in_use, kDeviceMemory);
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void*) {
  *attr = cudaFuncAttributes{};
  attr->binaryVersion = 90;
  attr->ptxVersion = 90;
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    if (device_in_use + bytes > kDeviceMemory) {
      *p = nullptr;
      return cudaErrorMemoryAllocation;  // not sticky, and not a finding
    }
  }
  *p = allocate(bytes, Space::device);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  drain_all();  // cudaFree waits for the device
  if (!p || release(p, Space::device)) return cudaSuccess;
  return fail(cudaErrorInvalidValue, "cudaFree(" + hex(p) + "): not an allocation of cudaMalloc, or freed already");
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = allocate(bytes, Space::pinned);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) {
  drain_all();
  if (!p || release(p, Space::pinned)) return cudaSuccess;
  return fail(cudaErrorInvalidValue, "cudaFreeHost(" + hex(p) + "): not an allocation of cudaHostAlloc");
}

// cudaMemcpy and cudaMemset run on the legacy default stream, which does not wait for
// crema's streams (they are non-blocking) nor they for it, and return as CUDA says:
// a copy into host memory, from pinned memory or between host buffers once done; one
// from pageable memory into device memory once the source is staged, and one between
// device buffers and a memset at once, both still queued.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  Space d = Space::pageable, s = Space::pageable;
  if (const cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy", &d, &s); e != cudaSuccess) return e;
  if (d == Space::device && s != Space::pinned) return copy_async(dst, src, bytes, kind, nullptr, "cudaMemcpy");
  drain(nullptr);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  return copy_async(dst, src, bytes, kind, s, "cudaMemcpyAsync");
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s) {
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync: width > pitch");
  for (size_t r = 0; r < height; ++r) {
    const cudaError_t e = copy_async(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                                     width, kind, s, "cudaMemcpy2DAsync");
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  if (!valid_stream(s, "cudaMemsetAsync")) return last_error;
  if (bytes == 0) return cudaSuccess;
  if (!require_device(p, bytes, "cudaMemsetAsync")) return last_error;
  queue_work(s, [p, value, bytes] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = static_cast<cudaStream_t>(new_handle(streams));
  return cudaSuccess;
}
// Returns at once; the stream's queued work still runs, at the next device-wide wait
// (or when a stream waits for an event recorded on it).
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!drop_handle(streams, s))
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: unknown stream " + hex(s));
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (!valid_stream(s, "cudaStreamSynchronize")) return last_error;
  drain(s);
  return device_status();
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = static_cast<cudaEvent_t>(new_handle(events));
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  {
    std::lock_guard<std::recursive_mutex> lock(device_mutex);
    recorded.erase(e);
  }
  return drop_handle(events, e) ? cudaSuccess
                                : fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: unknown event " + hex(e));
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!known(events, e)) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown event " + hex(e));
  if (!valid_stream(s, "cudaEventRecord")) return last_error;
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  recorded[e] = {s, queue_work(s, [] {})};
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!known(events, e)) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: unknown event " + hex(e));
  {
    std::lock_guard<std::recursive_mutex> lock(device_mutex);
    const auto it = recorded.find(e);
    if (it != recorded.end()) run_until(it->second.first, it->second.second);
  }
  return device_status();
}
// The stream's later work waits for what the event's stream had queued when it was
// recorded (the latest record at the time of this call, as in CUDA).
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (!known(events, e)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown event " + hex(e));
  if (!valid_stream(s, "cudaStreamWaitEvent")) return last_error;
  std::lock_guard<std::recursive_mutex> lock(device_mutex);
  const auto it = recorded.find(e);
  if (it != recorded.end()) {
    const auto [stream, count] = it->second;
    queue_work(s, [stream, count] { run_until(stream, count); });
  }
  return cudaSuccess;
}

// ---- cuBLAS (column-major, host pointer mode: alpha, beta and results on the host) ----

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

// The elements a column-major rows x cols matrix with leading dimension ld spans.
size_t span(int rows, int cols, int ld) {
  return rows == 0 || cols == 0 ? 0 : static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + rows;
}
size_t vector_span(int n, int inc) { return n <= 0 ? 0 : static_cast<size_t>(inc) * (n - 1) + 1; }

bool blas_device(const void* p, size_t floats, const char* call, const char* what) {
  return floats == 0 || device_data(p, floats * sizeof(float), std::string(call) + " " + what);
}
bool blas_host(const void* p, const char* call, const char* what) {
  std::string why;
  if (space_of(p, sizeof(float), &why) != Space::device) return true;
  report(std::string(call) + " " + what + ": " + hex(p) + " is device memory, but the handle is in host pointer mode");
  return false;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!valid_stream(s, "cublasSetStream")) return CUBLAS_STATUS_INVALID_VALUE;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH && mode != CUBLAS_PEDANTIC_MATH) {
    report("cublasSetMathMode: mode " + std::to_string(static_cast<int>(mode)) + " is not emulated");
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  const bool at = ta != CUBLAS_OP_N, bt = tb != CUBLAS_OP_N;
  const int a_rows = at ? k : m, a_cols = at ? m : k, b_rows = bt ? n : k, b_cols = bt ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m)) {
    report("cublasSgemm: m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                                    std::to_string(k) + " with lda " + std::to_string(lda) + ", ldb " +
                                    std::to_string(ldb) + ", ldc " + std::to_string(ldc));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (!valid_stream(h->stream, "cublasSgemm") || !blas_host(alpha, "cublasSgemm", "alpha") ||
      !blas_host(beta, "cublasSgemm", "beta") || !blas_device(A, span(a_rows, a_cols, lda), "cublasSgemm", "A") ||
      !blas_device(B, span(b_rows, b_cols, ldb), "cublasSgemm", "B") ||
      !blas_device(C, span(m, n, ldc), "cublasSgemm", "C"))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  // OpenBLAS, column-major as cuBLAS (crema's CPU code calls it row-major): beta 0
  // means C is not read, as in cuBLAS, so NaN in fresh memory does not leak in.
  const float a = *alpha, b = *beta;  // host pointer mode: read at the call
  const bool tf32 = h->math == CUBLAS_TF32_TENSOR_OP_MATH;  // the mode at the call
  queue_work(h->stream, [=] {
    const SingleThreadedBlas one_thread;
    // Under TF32 math the tensor cores see A and B rounded to TF32.
    std::vector<float> a_tf32, b_tf32;
    if (tf32) {
      a_tf32 = to_tf32(A, span(a_rows, a_cols, lda));
      b_tf32 = to_tf32(B, span(b_rows, b_cols, ldb));
    }
    cblas_sgemm(CblasColMajor, at ? CblasTrans : CblasNoTrans, bt ? CblasTrans : CblasNoTrans, m, n, k, a,
                tf32 ? a_tf32.data() : A, lda, tf32 ? b_tf32.data() : B, ldb, b, C, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t trans, int m, int n, const float* alpha, const float* A,
                           int lda, const float* x, int incx, const float* beta, float* y, int incy) {
  const bool t = trans != CUBLAS_OP_N;
  const int x_len = t ? m : n, y_len = t ? n : m;
  if (m < 0 || n < 0 || lda < std::max(1, m) || incx <= 0 || incy <= 0) {
    report("cublasSgemv: m " + std::to_string(m) + ", n " + std::to_string(n) + ", lda " +
                                    std::to_string(lda) + ", incx " + std::to_string(incx) + ", incy " +
                                    std::to_string(incy));
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (!valid_stream(h->stream, "cublasSgemv") || !blas_host(alpha, "cublasSgemv", "alpha") ||
      !blas_host(beta, "cublasSgemv", "beta") || !blas_device(A, span(m, n, lda), "cublasSgemv", "A") ||
      !blas_device(x, vector_span(x_len, incx), "cublasSgemv", "x") ||
      !blas_device(y, vector_span(y_len, incy), "cublasSgemv", "y"))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  const float a = *alpha, b = *beta;
  queue_work(h->stream, [=] {
    const SingleThreadedBlas one_thread;
    cblas_sgemv(CblasColMajor, t ? CblasTrans : CblasNoTrans, m, n, a, A, lda, x, incx, b, y, incy);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSdot(cublasHandle_t h, int n, const float* x, int incx, const float* y, int incy, float* result) {
  if (!valid_stream(h->stream, "cublasSdot") || !blas_host(result, "cublasSdot", "result") ||
      !blas_device(x, vector_span(n, incx), "cublasSdot", "x") ||
      !blas_device(y, vector_span(n, incy), "cublasSdot", "y"))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  drain(h->stream);  // the result goes to the host: the call returns when it is there
  double sum = 0;
  for (int i = 0; i < n; ++i)
    sum += static_cast<double>(x[static_cast<size_t>(i) * incx]) * y[static_cast<size_t>(i) * incy];
  *result = static_cast<float>(sum);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSasum(cublasHandle_t h, int n, const float* x, int incx, float* result) {
  if (!valid_stream(h->stream, "cublasSasum") || !blas_host(result, "cublasSasum", "result") ||
      !blas_device(x, vector_span(n, incx), "cublasSasum", "x"))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  drain(h->stream);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(x[static_cast<size_t>(i) * incx]));
  *result = static_cast<float>(sum);
  return CUBLAS_STATUS_SUCCESS;
}
