// Reduction: reduces all axes from reduction_param.axis (default 0) on to one value,
// so the top has the bottom's leading axes (a scalar for axis 0):
//   SUM:   y = coeff sum x          dx = coeff dy
//   ASUM:  y = coeff sum |x|        dx = coeff sign(x) dy
//   SUMSQ: y = coeff sum x^2        dx = 2 coeff x dy
//   MEAN:  y = coeff sum x / D      dx = coeff dy / D     (D: values per output)
// coeff defaults to 1; a non-zero loss_weight makes it a loss.
#pragma once

#include "engine/layer.hpp"

namespace crema {

// Caffe's ReductionParameter.ReductionOp (SUM = 1 ... MEAN = 4 there).
enum class ReductionOp { SUM, ASUM, SUMSQ, MEAN };

struct ReductionParams {
  ReductionOp operation = ReductionOp::SUM;
  int axis = 0;
  float coeff = 1.f;
  static ReductionParams parse(MapReader r);
};

class ReductionLayer : public Layer {
 public:
  explicit ReductionLayer(const LayerSpec& spec);
  const char* type() const override { return "Reduction"; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_gpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif

 private:
  ReductionParams params_;
  int num_ = 0, dim_ = 0;  // the bottom seen as (num_, dim_); one output per row
  float coeff_ = 1.f;      // coeff, divided by dim_ for MEAN
};

}  // namespace crema
