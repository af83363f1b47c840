#include "layers/onednn/onednn_gemm.hpp"

#include <array>
#include <atomic>
#include <optional>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;

struct Gemm::Impl {
  std::optional<std::array<int, 8>> shape;  // trans_a, trans_b, m, n, k, accumulate, bf16, b_rounded
  dnnl::matmul product;
  Staged a, b, c;
};

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {}
Gemm::~Gemm() = default;

std::string Gemm::prepare(bool trans_a, bool trans_b, int m, int n, int k, bool accumulate, bool bf16, bool b_rounded) {
  Impl& g = *impl_;
  b_rounded = b_rounded && bf16;
  const std::array<int, 8> shape = {trans_a, trans_b, m, n, k, accumulate, bf16, b_rounded};
  if (g.shape == shape) return "";
  g.shape.reset();
  // The caller's row-major buffers seen as op(A) (M, K) and op(B) (K, N) through strides.
  const memory::desc a_user({m, k}, memory::data_type::f32, trans_a ? memory::dims{1, m} : memory::dims{k, 1});
  const memory::desc b_user({k, n}, b_rounded ? memory::data_type::bf16 : memory::data_type::f32,
                            trans_b ? memory::dims{1, k} : memory::dims{n, 1});
  // C is given in its own layout (not left to oneDNN), so the sum post-op adds to the
  // caller's values rather than to a staging copy.
  const memory::desc c_user = plain_desc({m, n});
  try {
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops sum;  // C = product + C
      sum.append_sum(1.f);
      attr.set_post_ops(sum);
    }
    const dnnl::matmul::primitive_desc pd(
        // Rounded B is taken in its plain layout: matmul packs it as it goes, which at
        // AlexNet's fc6 (32 x 9216 x 4096) costs about one product, where a reorder of
        // the f32 weights to the layout of oneDNN's choice cost three.
        bf16 ? dnnl::matmul::desc(any_desc({m, k}, memory::data_type::bf16),
                                  b_rounded ? b_user : any_desc({k, n}, memory::data_type::bf16), c_user)
             : dnnl::matmul::desc(a_user, b_user, c_user),
        attr, cpu_engine());
    g.product = dnnl::matmul(pd);
    g.a.prepare(a_user, pd.src_desc(), Staged::Role::input);
    g.b.prepare(b_user, pd.weights_desc(), Staged::Role::input);
    g.c.prepare(c_user, pd.dst_desc(), Staged::Role::output);
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  g.shape = shape;
  return "";
}

void Gemm::run(const float* a, const void* b, float* c) {
  Impl& g = *impl_;
  g.product.execute(
      cpu_stream(),
      {{DNNL_ARG_SRC, g.a.input(a)}, {DNNL_ARG_WEIGHTS, g.b.input_of_type(b)}, {DNNL_ARG_DST, g.c.output(c)}});
  g.c.finish_output();
}

namespace {
std::atomic<long> g_roundings{0};
}  // namespace

struct RoundedCopy::Impl {
  // What `rounded` holds the values of (weak: a memory freed and another made at its
  // address is not taken for it) ...
  std::weak_ptr<SyncedMemory> source;
  unsigned long long writes = 0;         // ... as they were after this many writes
  size_t count = 0;
  memory from, rounded;  // (count) f32 around the source, (count) bf16 of our own
  dnnl::reorder round;
};

RoundedCopy::RoundedCopy() : impl_(std::make_unique<Impl>()) {}
RoundedCopy::~RoundedCopy() = default;

const void* RoundedCopy::of(const std::shared_ptr<SyncedMemory>& m, size_t count) {
  Impl& r = *impl_;
  if (r.count != count) {
    const memory::dims dims = {static_cast<memory::dim>(count)};
    r.from = memory(memory::desc(dims, memory::data_type::f32, memory::format_tag::a), cpu_engine(), DNNL_MEMORY_NONE);
    r.rounded = memory(memory::desc(dims, memory::data_type::bf16, memory::format_tag::a), cpu_engine());
    r.round = dnnl::reorder(r.from, r.rounded);  // round to nearest even, as oneDNN's own input reorders
    r.count = count;
    r.source.reset();
  }
  if (r.source.lock() != m || r.writes != m->writes()) {
    r.from.set_data_handle(const_cast<void*>(m->cpu_data()));
    r.round.execute(cpu_stream(), r.from, r.rounded);
    r.source = m;
    r.writes = m->writes();
    g_roundings.fetch_add(1, std::memory_order_relaxed);
  }
  return r.rounded.get_data_handle();
}

long RoundedCopy::roundings() { return g_roundings.load(); }

}  // namespace crema::onednn
