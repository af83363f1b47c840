// What every data layer served by a Prefetcher does the same way: forward copies
// the next batch into the tops (on a GPU from the device arrays the prefetcher
// staged it in, queued on the compute stream: no host-to-device copy in the step), the reader state goes into snapshots (the state
// after the last batch the solver took, so a resume continues with the next one),
// and the prefetcher's wait time and bad-sample count are the layer's data_stats().
// A derived layer creates prefetcher_ in layer_setup. prefetcher_ is destroyed
// after the derived layer's own members, so its FillSample must own or share what
// it reads (e.g. capture a shared_ptr), or the derived destructor must reset
// prefetcher_ first.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/prefetcher.hpp"
#include "engine/layer.hpp"

namespace crema {

// The other layers of `spec`'s net that read a source sample by sample (Data, ImageData,
// HDF5Data), by name; none when the spec is checked on its own. Such layers' samples pair
// up by position (an image with its mask, or with targets from another database), so their
// defaults keep them in step as Caffe's do: read in order, and a bad sample stops training
// rather than dropping out of one layer's batches only.
std::vector<std::string> paired_readers(const LayerSpec& spec);

// The recurrent layers (LSTM, RNN) of `spec`'s net whose sequence-continuation bottom (cont,
// the second) is one of `spec`'s tops, as "LSTM 'lstm'": the layer's samples are then the
// timesteps of time-major sequences (T rows of N streams a batch), which only make sequences
// read in order with none left out. Empty when none is.
std::vector<std::string> sequence_readers(const LayerSpec& spec);

// Why `spec`'s samples must all be read in order (paired_readers, sequence_readers), as the
// advice given when a bad one stops the layer; "" when nothing requires it.
std::string in_step_reason(const LayerSpec& spec);

// Refuses, at `params_key`.`key`, a source (or mean_file) that could not be opened (`why`),
// adding where a relative path was looked for when it is missing: Caffe reads it from the
// working directory, and a net run from another folder than its author's finds nothing there.
[[noreturn]] void refuse_source(const LayerSpec& spec, const std::string& params_key, const std::string& source,
                                const std::string& why, const std::string& key = "source");

// Refuses, at `params_key`.source, a source holding what another data layer reads (an image
// list given to Data, an LMDB given to ImageData, an HDF5 file given to Data), naming the
// layer that reads it: the readers' own errors (a labels file that cannot be derived, a
// folder without class folders) would send the user after the wrong fix.
void refuse_source_of_another_layer(const LayerSpec& spec, const std::string& params_key, const std::string& source);

class PrefetchedDataLayer : public Layer {
 public:
  using Layer::Layer;
  int exact_num_bottom() const override { return 0; }
  bool is_data() const override { return true; }
  bool supports(const Device& device) const override { return cpu_or_cuda(device); }
  std::string save_state() const override { return prefetcher_ ? prefetcher_->state() : std::string(); }
  void restore_state(const std::string& state) override;
  DataStats data_stats() const override;
  bool await_batches(int batches, const std::function<bool()>& give_up) override {
    return !prefetcher_ || prefetcher_->await(batches, give_up);
  }
  std::string describe_taken(int n) const override;

 protected:
  void forward_cpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  void forward_gpu(Context& ctx, const BlobVec& bottom, const BlobVec& top) override;
  // `options` with the device to stage batches on when `ctx` is a GPU's.
  static PrefetchOptions staged_for(const Context& ctx, PrefetchOptions options);
  // The seed of the layer's sample order. Paired readers (above) that shuffle share one,
  // drawn once per net, so layers holding the same number of samples go in one order.
  uint64_t order_seed(Context& ctx, bool shuffle) const;
  // The seed of the layer's per-sample augmentation seeds. Paired readers share one, so that
  // the i-th samples of two layers draw alike: an image and its mask of one size get the
  // same crop and the same mirror.
  uint64_t augment_seed(Context& ctx) const;
  // Says at setup how pairing with the net's other readers set this layer's defaults, or
  // warns where a written key breaks it. `own_blocks`: the layer shuffles in blocks of its
  // own size (HDF5Data), never in another layer's order.
  void say_pairing(bool shuffle, bool shuffle_written, const PrefetchOptions& options, bool own_blocks) const;
  // Names source sample `index` for messages (describe_taken); "" where the layer cannot say.
  virtual std::string describe_sample(int /*index*/) const { return ""; }

  std::unique_ptr<Prefetcher> prefetcher_;
  // The last batch of one shaped sample taken: its source index and its first top's shape.
  int taken_sample_ = -1;
  std::vector<int> taken_shape_;
  std::vector<int> taken_indices_;  // the source index of each item of the last batch taken

 private:
  // A batch of one shaped sample: the tops take its shape (said once, when it first changes).
  void take_shapes(const Prefetcher::Batch& batch, const BlobVec& top);
  bool said_reshaped_ = false;
};

}  // namespace crema
