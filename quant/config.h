// Quantization settings: global defaults (from command-line flags) plus per-node overrides read
// from a JSON or YAML file a person can edit:
//
//   # layers.yaml                               // layers.json: the same keys
//   defaults: {observer: entropy, bits_w: 8}    // optional; same names as below
//   layers:
//     - match: conv1          # node name, op type (Conv, Gemm, Add...) or glob (layer4.*)
//       quantize: false       # keep this node in FP32
//     - match: "layer3.*"
//       bits_w: 4
//       bits_a: 6
//       mode_a: asym_s        # sym | asym_u | asym_s
//       observer: percentile  # activation observer of the node's output
//       weight_observer: mse
//       per_channel: false
//
// Later entries win over earlier ones when several match a node.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "quant/fixedpoint.h"
#include "quant/observer.h"
#include "quant/qparams.h"

namespace engine::quant {

struct LayerSettings {
  bool quantize = true;
  int bits_w = 8, bits_a = 8;
  QMode mode_w = QMode::Sym, mode_a = QMode::AsymU;
  std::string observer = "minmax";         // activations (the node's output)
  std::string weight_observer = "minmax";  // per channel or per tensor
  bool per_channel = true;
};

struct LayerOverride {
  std::string match;
  std::optional<bool> quantize, per_channel;
  std::optional<int> bits_w, bits_a;
  std::optional<QMode> mode_w, mode_a;
  std::optional<std::string> observer, weight_observer;
};

struct QuantConfig {
  LayerSettings defaults;
  std::vector<LayerOverride> layers;
  ObserverOptions observer_options;
  StatsOptions stats_options;
  bool reduce_range = false;  // weights use bits_w - 1 bits (avoids int16 saturation w/o VNNI)
  RequantMode requant = RequantMode::Fixed;
  int scale_bits = 31;
  std::vector<std::string> exclude;  // names / op types / globs kept in FP32
  bool keep_first_last_fp32 = false;
  std::string quantize_from;  // node name: nodes before it stay FP32
  // Data-free improvements (Nagel et al. 2019): cross-layer equalization of consecutive convs
  // before calibration (quant/equalize.h), and bias correction of the weights' quantization
  // error from the calibration data's per-channel input means.
  bool equalize = false;
  bool bias_correct = false;

  // Settings for one node after applying `exclude` and the overrides (not first/last rules).
  LayerSettings settings_for(const Node& n) const;
  void validate() const;  // bits 2..8, known observers; throws naming the bad entry
};

// Reads `path` (.json, .yaml or .yml) and applies it on top of `cfg`.
void load_config_file(const std::string& path, QuantConfig& cfg);
// Parses the same structure from a JSON text (for tests and the API); `what` names it in errors.
void apply_config_json(const std::string& text, QuantConfig& cfg, const std::string& what);

// True if `pattern` names this node: its name, its op type, or a glob over the name.
bool node_matches(const std::string& pattern, const Node& n);

}  // namespace engine::quant
