// Calibration: streams batches through the FP32 graph (the same fused graph that will be
// quantized) and updates one TensorStats per float activation (graph inputs and every float node
// output). Memory is constant in the number of batches: activations are not kept.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/executor.h"
#include "quant/qparams.h"
#include "quant/stats.h"

namespace engine::quant {

using StatsMap = std::map<std::string, TensorStats>;  // by value name

class Calibrator {
 public:
  Calibrator(std::shared_ptr<const Graph> float_graph, const OpRegistry& registry,
             StatsOptions options = {});
  // One batch: inputs in graph input order.
  void add_batch(const std::vector<Tensor>& inputs, int threads = 0);
  const StatsMap& stats() const { return stats_; }
  int64_t batches() const { return batches_; }
  int64_t samples() const { return samples_; }

 private:
  void observe(const std::string& name, const Tensor& t);
  std::shared_ptr<const Graph> graph_;
  Executor exec_;
  StatsOptions options_;
  StatsMap stats_;
  std::set<std::string> channel_stats_;  // values read by Conv / Gemm: per-channel means too
  int64_t batches_ = 0, samples_ = 0;
};

// Stats file (JSON): {"format": "engine-calibration-stats", "version": 1, "samples": N,
//   "tensors": {"<name>": {<TensorStats fields>, "chosen": {...}, "override_range": [lo, hi]}}}
// "chosen" (written, informational) is what the quantizer picked: observer, range, scale, zero
// point. "override_range" (optional, written by a person) replaces the observer's range.
nlohmann::json stats_to_json(const StatsMap& stats, int64_t samples,
                             const nlohmann::json& chosen = nlohmann::json::object());
StatsMap stats_from_json(const nlohmann::json& j, const std::string& what,
                         std::map<std::string, Range>* overrides = nullptr);
// Reads a stats file (at most 1 GiB); `samples` receives its "samples" field.
StatsMap read_stats_file(const std::string& path, std::map<std::string, Range>* overrides = nullptr,
                         int64_t* samples = nullptr);

}  // namespace engine::quant
