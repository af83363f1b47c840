#include "layers/activation_layer.hpp"

namespace crema {

Engine parse_engine_only(const LayerSpec& spec, const std::string& key) {
  MapReader r = spec.params(key);
  const Engine engine = parse_engine(r);
  r.finish();
  return engine;
}

ActivationLayer::ActivationLayer(const LayerSpec& spec, const std::string& key, Engine engine, onednn::EltwiseOp op)
    : NeuronLayer(spec), key_(key), engine_(engine), op_(op) {}

void ActivationLayer::layer_setup(Context& ctx, const BlobVec&, const BlobVec&) {
  refuse_onednn_on_gpu(engine_, ctx, spec_, key_ + ".engine");
  if (!ctx.on_gpu() && wants_onednn(engine_)) onednn_ = std::make_unique<onednn::Eltwise>();
}

void ActivationLayer::reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::reshape(bottom, top);
  use_onednn_ = false;
  if (!onednn_ || bottom[0]->count() == 0) return;
  op_.count = bottom[0]->count();
  const std::string why = onednn_->prepare(op_);
  if (!why.empty() && engine_ == Engine::ONEDNN)
    spec_.fail("oneDNN cannot compute this " + std::string(type()) + " as the reference does (" + why + "); use " +
               key_ + ".engine: DEFAULT or CAFFE");
  use_onednn_ = why.empty();
}

bool ActivationLayer::forward_onednn(const BlobVec& bottom, const BlobVec& top) {
  if (!use_onednn_) return false;
  onednn_->forward(*bottom[0]->data_memory(), *top[0]->data_memory());
  return true;
}

bool ActivationLayer::backward_onednn(const BlobVec& top, const BlobVec& bottom) {
  if (!use_onednn_) return false;
  onednn_->backward(*backward_values(top, bottom).data_memory(), *top[0]->diff_memory(), *bottom[0]->diff_memory());
  return true;
}

}  // namespace crema
