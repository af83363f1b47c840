// Device kernels for Softmax, SoftmaxWithLoss, Accuracy and EuclideanLoss. Scores
// are seen as (outer, channels, inner) around the class axis; labels (outer, inner)
// are class indices stored as floats. Losses are reduced on the device and written
// into the top there. Every pointer is a device pointer.
#pragma once

#include "engine/cuda/cuda_context.hpp"

namespace crema::cuda {

// y = softmax of x over channels; y may alias x. x, y: (outer, channels, inner)
void softmax_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* x, float* y);
// dx = y ⊙ (dy − Σ_c dy·y); dx may alias dy. y, dy, dx: (outer, channels, inner)
void softmax_backward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* y,
                          const float* dy, float* dx);

// How labels are read (layers/loss_layer.hpp's read_label): an ignored value, and
// Caffe's normalisation (LossNormalization's enum order: FULL, VALID, BATCH_SIZE, NONE).
struct LabelRule {
  bool has_ignore = false;
  int ignore_label = 0;
  int normalization = 1;
};

// How many labels were out of range (or not numbers); when some were, the layer finds
// the first (check_labels_gpu) to report it as the CPU does.
struct LabelCheck {
  float bad = 0.f;
};

// loss[0] = −Σ_valid log(max(p_label, FLT_MIN)) / normalizer, with stats (3) =
// {positions not ignored, bad labels, unused}. Waits for the stream to return
// the label check. prob: (outer, channels, inner); label: (outer, inner); loss: (1)
LabelCheck softmax_loss_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* prob,
                                    const float* label, const LabelRule& rule, float* loss, float* stats);
// dx = (prob − onehot(label)) · top_diff[0] / normalizer(stats[0]), 0 at ignored
// positions. prob, dx: (outer, channels, inner); label: (outer, inner); top_diff: (1)
void softmax_loss_backward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* prob,
                               const float* label, const LabelRule& rule, const float* stats, const float* top_diff,
                               float* dx);

// accuracy[0] = the fraction of counted positions whose label is among the top_k
// scores (ties count against), per_class (channels, may be null) the same per class.
// counts is scratch of accuracy_scratch_size(channels). Waits for the stream.
// score: (outer, channels, inner); label: (outer, inner)
int accuracy_scratch_size(int channels);
LabelCheck accuracy_forward_gpu(const CudaContext& ctx, int outer, int channels, int inner, const float* score,
                                const float* label, int top_k, const LabelRule& rule, float* counts, float* accuracy,
                                float* per_class);

// out[0] = scale · Σ x², summed on the device. x: (n); out: (1)
void sumsq_to_gpu(const CudaContext& ctx, int n, const float* x, float scale, float* out);
// y = factor · s[0] · x, with the scalar s read on the device. x, y: (n); s: (1)
void scale_by_scalar_gpu(const CudaContext& ctx, int n, const float* s, float factor, const float* x, float* y);

}  // namespace crema::cuda
