#include "layers/onednn/onednn_gemm.hpp"

#include <array>
#include <optional>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;

struct Gemm::Impl {
  std::optional<std::array<int, 7>> shape;  // trans_a, trans_b, m, n, k, accumulate, bf16
  dnnl::matmul product;
  Staged a, b, c;
};

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {}
Gemm::~Gemm() = default;

std::string Gemm::prepare(bool trans_a, bool trans_b, int m, int n, int k, bool accumulate, bool bf16) {
  Impl& g = *impl_;
  const std::array<int, 7> shape = {trans_a, trans_b, m, n, k, accumulate, bf16};
  if (g.shape == shape) return "";
  g.shape.reset();
  // The caller's row-major buffers seen as op(A) (M, K) and op(B) (K, N) through strides.
  const memory::desc a_user({m, k}, memory::data_type::f32, trans_a ? memory::dims{1, m} : memory::dims{k, 1});
  const memory::desc b_user({k, n}, memory::data_type::f32, trans_b ? memory::dims{1, k} : memory::dims{n, 1});
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
        bf16 ? dnnl::matmul::desc(any_desc({m, k}, memory::data_type::bf16), any_desc({k, n}, memory::data_type::bf16),
                                  c_user)
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

void Gemm::run(const float* a, const float* b, float* c) {
  Impl& g = *impl_;
  g.product.execute(cpu_stream(), {{DNNL_ARG_SRC, g.a.input(a)}, {DNNL_ARG_WEIGHTS, g.b.input(b)},
                                   {DNNL_ARG_DST, g.c.output(c)}});
  g.c.finish_output();
}

}  // namespace crema::onednn
