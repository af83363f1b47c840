#include "layers/onednn/onednn_batch_norm.hpp"

#include <optional>

#include "layers/onednn/onednn_common.hpp"

namespace crema::onednn {

using dnnl::memory;

struct BatchNorm::Impl {
  std::optional<BatchNormShape> shape;
  dnnl::batch_normalization_forward forward;
  dnnl::batch_normalization_backward backward;
  memory src, dst, mean, var, diff_dst, diff_src;  // around the caller's pointers
};

BatchNorm::BatchNorm() : impl_(std::make_unique<Impl>()) {}
BatchNorm::~BatchNorm() = default;

std::string BatchNorm::prepare(const BatchNormShape& s) {
  Impl& m = *impl_;
  if (m.shape && *m.shape == s) return "";
  m.shape.reset();
  const memory::desc data = plain_desc({s.num, s.channels, s.height, s.width});
  const memory::desc stats = plain_desc({s.channels});
  const auto flags = s.global_stats ? dnnl::normalization_flags::use_global_stats : dnnl::normalization_flags::none;
  dnnl::engine& eng = cpu_engine();
  try {
    using fwd = dnnl::batch_normalization_forward;
    // Plain layouts: normalisation is memory-bound, and a reorder would cost as much.
    const fwd::primitive_desc fpd(fwd::desc(dnnl::prop_kind::forward_training, data, s.eps, flags), eng);
    using bwd = dnnl::batch_normalization_backward;
    const bwd::primitive_desc bpd(bwd::desc(dnnl::prop_kind::backward_data, data, data, s.eps, flags), eng, fpd);
    if (fpd.dst_desc() != data || fpd.mean_desc() != stats || bpd.diff_src_desc() != data)
      return "oneDNN wants other layouts";
    m.forward = fwd(fpd);
    m.backward = bwd(bpd);
  } catch (const dnnl::error& e) {
    return describe(e);
  }
  for (memory* mem : {&m.src, &m.dst, &m.diff_dst, &m.diff_src}) *mem = memory(data, eng, DNNL_MEMORY_NONE);
  m.mean = memory(stats, eng, DNNL_MEMORY_NONE);
  m.var = memory(stats, eng, DNNL_MEMORY_NONE);
  m.shape = s;
  return "";
}

void BatchNorm::forward(const float* x, float* mean, float* var, float* y) {
  Impl& m = *impl_;
  m.src.set_data_handle(const_cast<float*>(x));  // read only
  m.dst.set_data_handle(y);
  m.mean.set_data_handle(mean);
  m.var.set_data_handle(var);
  m.forward.execute(cpu_stream(), {{DNNL_ARG_SRC, m.src},
                                   {DNNL_ARG_DST, m.dst},
                                   {DNNL_ARG_MEAN, m.mean},
                                   {DNNL_ARG_VARIANCE, m.var}});
}

void BatchNorm::backward(const float* x, const float* mean, const float* var, const float* dy, float* dx) {
  Impl& m = *impl_;
  // oneDNN reads these; its handles are not const.
  m.src.set_data_handle(const_cast<float*>(x));
  m.mean.set_data_handle(const_cast<float*>(mean));
  m.var.set_data_handle(const_cast<float*>(var));
  m.diff_dst.set_data_handle(const_cast<float*>(dy));
  m.diff_src.set_data_handle(dx);
  m.backward.execute(cpu_stream(), {{DNNL_ARG_SRC, m.src},
                                    {DNNL_ARG_MEAN, m.mean},
                                    {DNNL_ARG_VARIANCE, m.var},
                                    {DNNL_ARG_DIFF_DST, m.diff_dst},
                                    {DNNL_ARG_DIFF_SRC, m.diff_src}});
}

}  // namespace crema::onednn
