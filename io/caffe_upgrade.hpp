// Caffe's format upgrades (upgrade_proto.cpp), applied to a config tree on read so
// that nets and solvers written for older Caffe versions load as they do in Caffe,
// whether they come as prototxt or as YAML (which mirrors the same field names):
//   - V1 nets: `layers` → `layer`, enum types (CONVOLUTION, SOFTMAX_LOSS) → type
//     names (Convolution, SoftmaxWithLoss), `blobs_lr` / `weight_decay` / `param` /
//     `blob_share_mode` → `param { lr_mult decay_mult name share_mode }`;
//   - data transformation fields (scale, mean_file, crop_size, mirror) in
//     data_param / image_data_param / window_data_param → transform_param;
//   - net-level `input` + `input_dim` (4 per input) or `input_shape` → an Input layer
//     named "input" in front of the others;
//   - BatchNorm layers with three `param` entries → lr_mult 0, decay_mult 0;
//   - solvers: `solver_type` enum → `type` name, `net_param` → an inline `net`.
// Values keep their file:line:col, so errors after an upgrade still point at what
// the user wrote. V0 nets (`layers { layer { ... } }`, before 2014) are refused.
#pragma once

#include <string>
#include <vector>

#include "engine/config.hpp"

namespace crema::io {

// Upgrades a net map in place. Returns what was upgraded, for the log (empty when
// the net was current). Also turns a single `layer` map into a one-item list.
std::vector<std::string> upgrade_net(Node& net);
// Upgrades a solver map in place, and its net when it is inline.
std::vector<std::string> upgrade_solver(Node& solver);

// The type name of a V1LayerParameter.LayerType value (14: "InnerProduct"); "" for NONE or a
// value Caffe never had.
std::string v1_type_name(int value);

// Whether a config map is a solver (it names a net or has solver keys such as
// base_lr) rather than a net (which has layers).
bool is_solver_message(const Node& root);

// The solver as Caffe's text format spells it: an inline `net` map is `net_param`
// there (Caffe's `net` is a path). Nets and path-naming solvers come back as they are.
Node caffe_text_layout(const Node& root);

}  // namespace crema::io
