// The quantization debugger: where, layer by layer, an INT8 model drifts from its FP32 original,
// which layers hurt accuracy most, and which to keep in FP32 (api/debug.cpp; `engine debug`).
//
// Two views of every quantized layer output, INT8 (dequantized) against FP32 on the same inputs:
//   - accumulated: the whole graph quantized, errors compound layer after layer; "dB lost" is
//     how much SQNR the layer itself removes (its inputs' SQNR minus its output's);
//   - isolated: only this layer quantized (its inputs quantized, its output dequantized),
//     everything else FP32: the layer's own damage, its effect on the final output and on top-1.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "quant/compare.h"

namespace engine {

// One batch of debug data: the model's inputs and (optionally) one label per sample (-1: none).
struct DebugBatch {
  std::vector<Tensor> inputs;
  std::vector<int> labels;
};

struct DebugOptions {
  bool isolated = true;  // also run the one-layer-at-a-time mode (one model per layer)
  // --dump: write FP32 and INT8 tensors of these layers (node or value names; empty = every
  // quantized layer) for the first batch into dump_dir as <layer>.fp32.npy / .int8.npy.
  std::string dump_dir;
  std::vector<std::string> dump_layers;
  // Flags: weight channel range spread above this (largest / median channel max) ...
  double spread_warning = 10;
  // ... and layers whose accumulated SQNR falls below this.
  double sqnr_warning_db = 20;
  // Progress messages (stderr-like); may be empty.
  std::function<void(const std::string&)> progress;
};

struct LayerDebug {
  std::string node, op_type;  // the node of the (fused) FP32 graph
  std::string value;          // its output value compared
  int index = 0;              // position in the graph
  bool compute = false;       // Conv / Gemm / Add / Concat / pools (isolated mode runs these)
  quant::ErrorStats accumulated;
  double input_sqnr_db = quant::ErrorStats::kExactDb;  // worst SQNR among its data inputs
  double lost_db() const { return input_sqnr_db - accumulated.sqnr_db(); }
  bool has_isolated = false;
  quant::ErrorStats isolated, isolated_final;  // layer output, first model output
  double isolated_top1 = -1;                   // % top-1 with only this layer quantized
  std::optional<quant::WeightReport> weights;
  std::vector<float> act_min, act_max;  // FP32 output range per channel (axis 1)
  // Calibration histogram of the output (counts over [hist_lo, hist_hi], evenly spaced bins)
  // and the clipping range the observer chose.
  std::vector<int64_t> hist;
  double hist_lo = 0, hist_hi = 0, clip_lo = 0, clip_hi = 0;
  std::string observer;
  std::vector<std::string> flags;  // warnings, each with its reason
};

struct DebugReport {
  std::vector<LayerDebug> layers;  // graph order
  quant::ErrorStats final_output;  // first model output, whole graph quantized
  int64_t samples = 0, labeled = 0;
  double fp32_top1 = -1, int8_top1 = -1;  // % over the labeled samples (-1: no labels)
  // Layers sorted by damage: accumulated by dB lost, isolated by the final output's SQNR.
  std::vector<int> ranked_accumulated() const;
  std::vector<int> ranked_isolated() const;
  nlohmann::json to_json() const;
  std::string to_text(int top = 0) const;  // top = 0: every layer
  // A self-contained HTML page (inline SVG charts, no scripts or network): per-layer error bars
  // of both modes, each layer's activation histogram with the chosen clipping range, weight
  // ranges per channel, the warnings.
  std::string to_html(const std::string& title) const;
};

// Compares `fp32` with its quantization by `cfg` from `stats` over the batches from `data`
// (called with a batch index until it returns false; the same batches each time).
using DebugSource = std::function<bool(int64_t index, DebugBatch& batch)>;
DebugReport debug_quantization(const Model& fp32, const quant::QuantConfig& cfg,
                               const quant::StatsMap& stats, const DebugSource& data,
                               const DebugOptions& opt = {});

// Top-1 (%) of `m` over the labeled samples of `data`; -1 when none is labeled.
double top1_accuracy(const Model& m, const DebugSource& data, int64_t* labeled = nullptr);

// --max-drop: keeps layers in FP32, most damaging first (isolated final-output SQNR), until the
// quantized model's top-1 on `data` is within `max_drop` points of FP32's. Returns the layers
// kept in FP32, and the config (cfg plus those exclusions) and the accuracy reached.
struct MixedPrecisionResult {
  std::vector<std::string> fp32_layers;
  quant::QuantConfig config;
  double fp32_top1 = 0, top1 = 0;
  double int8_top1 = 0;  // every layer quantized (before keeping any in FP32)
  bool met = false;
  std::vector<std::pair<std::string, double>> steps;  // layer kept in FP32, top-1 after it
};
MixedPrecisionResult keep_sensitive_layers_fp32(const Model& fp32, const quant::QuantConfig& cfg,
                                                const quant::StatsMap& stats,
                                                const DebugReport& report, const DebugSource& data,
                                                double max_drop, const DebugOptions& opt = {});
// The per-layer config file (YAML) for `engine quantize --config` that keeps `layers` in FP32.
std::string fp32_layers_config(const std::vector<std::string>& layers);

}  // namespace engine
