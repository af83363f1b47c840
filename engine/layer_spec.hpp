// The parts of a layer definition that every layer shares (Caffe's LayerParameter
// minus the typed *_param messages, which each layer reads itself from `config`).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.hpp"

namespace crema {

enum class Phase { TRAIN, TEST };
inline const char* phase_name(Phase p) { return p == Phase::TRAIN ? "TRAIN" : "TEST"; }

struct ParamSpec {
  std::string name;  // shared parameters have the same non-empty name
  float lr_mult = 1.f;
  float decay_mult = 1.f;
  // Written in the config (Caffe's has_lr_mult): a sharer's multiplier applies when the
  // owner left it at its default, and two written ones must agree.
  bool lr_mult_given = false;
  bool decay_mult_given = false;
  bool permissive = false;  // share_mode: PERMISSIVE, sharing by element count, not shape
};

// Caffe's NetStateRule: a layer is in the net when a rule matches the net state.
struct NetStateRule {
  std::optional<Phase> phase;
  std::optional<int> min_level, max_level;
  std::vector<std::string> stage, not_stage;
};

struct NetState {
  Phase phase = Phase::TRAIN;
  int level = 0;
  std::vector<std::string> stage;
};

bool rule_matches(const NetStateRule& rule, const NetState& state);

// A state as a config writes it (a net's `state`, a solver's train_state/test_state):
// only what it sets. Merged over a base as Caffe's protobuf MergeFrom does: a phase or
// level written replaces the base's, stages are appended.
struct NetStateSetting {
  std::optional<Phase> phase;
  std::optional<int> level;
  std::vector<std::string> stage;
};
NetState merged(NetState base, const NetStateSetting& setting);
NetStateSetting parse_state_setting(MapReader& r);

// One layer of a net, as other layers of the net may need to know of it.
struct NetLayerRef {
  std::string name, type;
  const Node* config = nullptr;  // its whole config map, as LayerSpec::config
};

struct LayerSpec {
  std::string name, type;
  std::vector<std::string> bottom, top;
  std::vector<ParamSpec> param;
  std::vector<float> loss_weight;
  std::vector<bool> propagate_down;
  std::vector<NetStateRule> include, exclude;
  Phase phase = Phase::TRAIN;  // the phase of the net the layer is built into
  bool phase_given = false;    // the layer's own `phase:` wins over the net's (as in Caffe)
  bool inserted_split = false;   // a Split insert_splits made, not one the user wrote
  const Node* config = nullptr;  // the layer's whole config map (typed params live here)
  Mark mark;
  std::string path;  // key path of the layer, e.g. "net.layer[3]"
  // *_param keys the layer asked for (shared between copies of the spec), so that
  // the registry can reject a misspelt one after construction.
  std::shared_ptr<std::vector<std::string>> read_keys = std::make_shared<std::vector<std::string>>();
  // Every layer of the net this one is built into, in order; null when the spec is checked
  // on its own. For the few layers whose defaults depend on the rest of the net (data
  // layers whose samples pair up by position).
  std::shared_ptr<const std::vector<NetLayerRef>> net_layers;
  uint64_t net_serial = 0;  // tells the nets of one process apart (0: checked on its own)

  // Reader for one typed parameter message, e.g. params("pooling_param"); the
  // layer calls finish() on it once it has read every key it knows.
  MapReader params(const std::string& key) const;
  // A ConfigError at this layer: "file:line:col: net.layer[3] (conv1): message".
  [[noreturn]] void fail(const std::string& message) const;
  // The same, at the value of `params_key`.`key` where it is written (a data layer's source
  // that cannot be read): "file:line:col: net.layer[0] (data): data_param.source: message".
  [[noreturn]] void fail_at(const std::string& params_key, const std::string& key, const std::string& message) const;
  // "bottom 1 (cont)" for messages about one bottom ("bottom 1" when it has no name).
  std::string bottom_label(size_t i) const;
};

// Parses the shared keys of a layer map. Unknown keys are rejected by the registry
// once the layer has read its typed parameters.
LayerSpec parse_layer_spec(const Node& node);
// The keys parse_layer_spec consumes.
const std::vector<std::string>& common_layer_keys();

NetStateRule parse_rule(MapReader& r);

}  // namespace crema
