#include "layers/spp_layer.hpp"

#include <string>

namespace crema {

SPPParams SPPParams::parse(MapReader r) {
  SPPParams p;
  p.pyramid_height = r.required("pyramid_height").as_int();
  if (p.pyramid_height < 1) r.fail("pyramid_height", "pyramid_height must be at least 1");
  // Keeps 2^(pyramid_height - 1) bins per side within int range.
  if (p.pyramid_height > 16) r.fail("pyramid_height", "pyramid_height must be at most 16");
  const int pool = r.get_enum("pool", {"MAX", "AVE", "STOCHASTIC"}, 0, 0);
  if (pool == 2) r.fail("pool", "STOCHASTIC pooling is not supported yet; use MAX or AVE");
  p.pool = static_cast<Method>(pool);
  r.allow({"engine"});
  r.finish();
  return p;
}

SPPLayer::SPPLayer(const LayerSpec& spec) : Layer(spec), params_(SPPParams::parse(spec.params("spp_param"))) {}

SPPLayer::Stage SPPLayer::make_stage(const std::string& type, const std::string& suffix, Node params,
                                     const BlobVec& bottom, const BlobVec& top) {
  // A config as the user would write it, located at this layer, so that any error
  // an inner layer raises points here.
  Stage s;
  s.config = std::make_unique<Node>(Node::map(spec_.mark, spec_.path));
  s.config->set("name", Node::scalar(spec_.name + "/" + suffix, spec_.mark));
  s.config->set("type", Node::scalar(type, spec_.mark));
  if (params.is_map()) s.config->set("pooling_param", std::move(params));
  LayerSpec spec = parse_layer_spec(*s.config);
  spec.phase = spec_.phase;
  s.layer = LayerRegistry::instance().create(spec);
  s.bottom = bottom;
  s.top = top;
  s.layer->setup(inner_ctx_, s.bottom, s.top);
  return s;
}

void SPPLayer::build_poolings(int height, int width, const BlobVec& bottom, const BlobVec& top) {
  // A level that fails leaves the list short: the next reshape builds it again, whatever the size.
  height_ = width_ = -1;
  poolings_.clear();
  for (int level = 0; level < params_.pyramid_height; ++level) {
    const int bins = 1 << level;
    // Caffe's GetPoolingParam: the smallest kernel whose bins cover the image, with
    // the remainder padded on both sides.
    const int kernel_h = (height + bins - 1) / bins, kernel_w = (width + bins - 1) / bins;
    const int pad_h = (kernel_h * bins - height + 1) / 2, pad_w = (kernel_w * bins - width + 1) / 2;
    if (pad_h >= kernel_h || pad_w >= kernel_w)
      spec_.fail("pyramid level " + std::to_string(level) + " (" + std::to_string(bins) + "x" +
                 std::to_string(bins) + " bins) cannot pool a " + std::to_string(height) + "x" +
                 std::to_string(width) + " bottom: it needs pad " + std::to_string(pad_h) + "x" +
                 std::to_string(pad_w) + " with kernel " + std::to_string(kernel_h) + "x" +
                 std::to_string(kernel_w) + ", and pooling needs pad < kernel (as in Caffe); use a smaller "
                 "pyramid_height or a larger input");
    Node p = Node::map(spec_.mark, spec_.path + ".spp_param");
    auto set = [&](const char* key, const std::string& value) { p.set(key, Node::scalar(value, spec_.mark)); };
    set("pool", params_.pool == SPPParams::Method::MAX ? "MAX" : "AVE");
    set("kernel_h", std::to_string(kernel_h));
    set("kernel_w", std::to_string(kernel_w));
    set("stride_h", std::to_string(kernel_h));
    set("stride_w", std::to_string(kernel_w));
    set("pad_h", std::to_string(pad_h));
    set("pad_w", std::to_string(pad_w));
    const bool single = params_.pyramid_height == 1;
    poolings_.push_back(make_stage("Pooling", "pool" + std::to_string(level), std::move(p),
                                   single ? bottom : BlobVec{split_tops_[static_cast<size_t>(level)].get()},
                                   single ? top : BlobVec{pooled_[static_cast<size_t>(level)].get()}));
  }
  height_ = height;
  width_ = width;
}

void SPPLayer::layer_setup(Context&, const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (x.num_axes() != 4) spec_.fail("SPP needs a 4-D bottom (N, C, H, W), got shape " + x.shape_string());
  if (x.shape(2) <= 0 || x.shape(3) <= 0) spec_.fail("SPP needs a non-empty image, got shape " + x.shape_string());
  if (params_.pyramid_height == 1) {
    build_poolings(x.shape(2), x.shape(3), bottom, top);
    return;
  }
  BlobVec split_tops, flat;
  for (int level = 0; level < params_.pyramid_height; ++level) {
    split_tops_.push_back(std::make_unique<Blob>());
    pooled_.push_back(std::make_unique<Blob>());
    flattened_.push_back(std::make_unique<Blob>());
    split_tops.push_back(split_tops_.back().get());
    flat.push_back(flattened_.back().get());
  }
  split_ = make_stage("Split", "split", Node(), bottom, split_tops);
  build_poolings(x.shape(2), x.shape(3), bottom, top);
  for (int level = 0; level < params_.pyramid_height; ++level)
    flattens_.push_back(make_stage("Flatten", "flatten" + std::to_string(level), Node(),
                                   {pooled_[static_cast<size_t>(level)].get()}, {flat[static_cast<size_t>(level)]}));
  concat_ = make_stage("Concat", "concat", Node(), flat, top);
}

void SPPLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  if (x.num_axes() != 4) spec_.fail("SPP needs a 4-D bottom (N, C, H, W), got shape " + x.shape_string());
  if (x.shape(2) != height_ || x.shape(3) != width_) build_poolings(x.shape(2), x.shape(3), bottom, top);
  // The outer blobs, in case the caller hands in other ones than at setup.
  if (params_.pyramid_height == 1) {
    poolings_[0].bottom = bottom;
    poolings_[0].top = top;
    poolings_[0].layer->reshape(bottom, top);
    return;
  }
  split_.bottom = bottom;
  concat_.top = top;
  split_.layer->reshape(split_.bottom, split_.top);
  for (int level = 0; level < params_.pyramid_height; ++level) {
    Stage& p = poolings_[static_cast<size_t>(level)];
    Stage& f = flattens_[static_cast<size_t>(level)];
    p.layer->reshape(p.bottom, p.top);
    f.layer->reshape(f.bottom, f.top);
  }
  concat_.layer->reshape(concat_.bottom, concat_.top);
}

void SPPLayer::forward_cpu(Context& ctx, const BlobVec&, const BlobVec&) { forward_stages(ctx); }

void SPPLayer::backward_cpu(Context& ctx, const BlobVec&, const std::vector<bool>& propagate_down, const BlobVec&) {
  backward_stages(ctx, propagate_down);
}

void SPPLayer::forward_stages(Context& ctx) {
  if (params_.pyramid_height == 1) {
    run_forward(ctx, poolings_[0]);
    return;
  }
  run_forward(ctx, split_);
  for (size_t level = 0; level < poolings_.size(); ++level) {
    run_forward(ctx, poolings_[level]);
    run_forward(ctx, flattens_[level]);
  }
  run_forward(ctx, concat_);
}

void SPPLayer::backward_stages(Context& ctx, const std::vector<bool>& propagate_down) {
  if (!propagate_down[0]) return;
  if (params_.pyramid_height == 1) {
    run_backward(ctx, poolings_[0], propagate_down);
    return;
  }
  run_backward(ctx, concat_, std::vector<bool>(concat_.bottom.size(), true));
  for (size_t level = 0; level < poolings_.size(); ++level) {
    run_backward(ctx, flattens_[level], {true});
    run_backward(ctx, poolings_[level], {true});
  }
  run_backward(ctx, split_, {true});
}

CREMA_REGISTER_LAYER("SPP", SPPLayer);

}  // namespace crema
