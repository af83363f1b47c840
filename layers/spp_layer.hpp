// SPP, spatial pyramid pooling (Caffe's SPPLayer): pools a bottom (N, C, H, W) at
// pyramid_height levels; level l cuts the image into 2^l x 2^l bins, so every level
// gives a fixed size whatever H and W are. Level l is a Pooling with
//   kernel = ceil(H / 2^l), stride = kernel, pad = (kernel 2^l - H + 1) / 2
// (likewise for W), whose (N, C, 2^l, 2^l) result is flattened; the levels are
// concatenated into a top (N, C (1 + 4 + ... + 4^(h-1))). As in Caffe, the layer is
// composed of Split, Pooling, Flatten and Concat layers, and a pyramid_height of 1 is
// one Pooling whose top stays (N, C, 1, 1). A new bottom size rebuilds the poolings.
// Caffe's Pooling needs pad < kernel, which some small sizes break (e.g. H = 5 at
// 4 bins: kernel 2, pad 2); crema says so instead of aborting. On a GPU the inner
// layers run their own GPU paths on the caller's context.
#pragma once

#include <memory>
#include <vector>

#include "engine/layer.hpp"

namespace crema {

struct SPPParams {
  int pyramid_height = 0;
  enum class Method { MAX, AVE };
  Method pool = Method::MAX;
  static SPPParams parse(MapReader r);
};

class SPPLayer : public Layer {
 public:
  explicit SPPLayer(const LayerSpec& spec);
  const char* type() const override { return "SPP"; }
  int exact_num_bottom() const override { return 1; }
  int exact_num_top() const override { return 1; }
  // Split, Pooling, Flatten and Concat all run on the GPU.
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  void reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void layer_setup(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void backward_cpu(Context& ctx, const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#ifdef CREMA_WITH_CUDA
  void forward_gpu(Context& ctx, const BlobVec&, const BlobVec&) override { forward_stages(ctx); }
  void backward_gpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down, const BlobVec&) override {
    backward_stages(ctx, propagate_down);
  }
#endif

 private:
  // One inner layer with the blobs it reads and writes.
  struct Stage {
    std::unique_ptr<Node> config;  // the spec points into it
    std::unique_ptr<Layer> layer;
    BlobVec bottom, top;
  };
  Stage make_stage(const std::string& type, const std::string& suffix, Node params, const BlobVec& bottom,
                   const BlobVec& top);
  // (Re)creates the level poolings for a bottom of height x width.
  void build_poolings(int height, int width, const BlobVec& bottom, const BlobVec& top);
  void run_forward(Context& ctx, Stage& s) { s.layer->forward(ctx, s.bottom, s.top); }
  void run_backward(Context& ctx, Stage& s, const std::vector<bool>& propagate_down) {
    s.layer->backward(ctx, s.top, propagate_down, s.bottom);
  }
  // The whole pyramid on ctx's device: each inner layer dispatches on ctx itself.
  void forward_stages(Context& ctx);
  void backward_stages(Context& ctx, const std::vector<bool>& propagate_down);

  SPPParams params_;
  int height_ = -1, width_ = -1;  // the bottom size the poolings were built for
  // Inner setups draw nothing at random; reshape has no context of its own.
  Context inner_ctx_{0};
  std::vector<std::unique_ptr<Blob>> split_tops_, pooled_, flattened_;
  Stage split_, concat_;
  std::vector<Stage> poolings_, flattens_;
};

}  // namespace crema
