// The quantization pass: rewrites a fused FP32 graph into integer ops (engine domain QConv,
// QGemm, QAdd, QConcat, QAveragePool, QGlobalAveragePool; MaxPool / Reshape / Flatten /
// Transpose / Squeeze / Unsqueeze / Relu-as-Clip pass uint8/int8 through unchanged). Tensors
// stay quantized between such ops; QuantizeLinear / DequantizeLinear appear only where a value
// crosses between an integer op and an op without an integer kernel (or a graph input/output).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/graph.h"
#include "quant/calibrate.h"
#include "quant/config.h"

namespace engine::quant {

struct NodeDecision {
  std::string name, op_type;
  bool quantized = false;
  std::string reason;  // why it stays FP32 (empty when quantized)
};

struct QuantizeResult {
  Graph graph;
  std::vector<NodeDecision> decisions;  // one per node of the input graph, in order
  // Per quantized tensor: observer, data min/max, chosen range, bits, mode, scale, zero point.
  nlohmann::json chosen = nlohmann::json::object();
  int quantize_nodes = 0, dequantize_nodes = 0;  // border nodes inserted
  // Float value name -> the name of its integer form (which carries QuantParams), for every
  // value that exists quantized (the debugger compares the two).
  std::map<std::string, std::string> quantized_values;
};

QuantizeResult quantize_graph(const Graph& g, const StatsMap& stats, const QuantConfig& cfg,
                              const std::map<std::string, Range>& range_overrides = {});

// True if the graph already runs in integers (engine Q ops, QLinear* or QDQ nodes).
bool is_quantized_graph(const Graph& g);

}  // namespace engine::quant
