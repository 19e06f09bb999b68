// What `engine inspect` shows: the graph after passes, specialized to a batch size.
#pragma once

#include <string>

#include "backends/kernels.h"  // kernel_selection(): `engine inspect --kernels`
#include "engine/engine.h"

namespace engine {

struct NodeReport {
  std::string name, op_type;
  std::vector<std::string> inputs, outputs;  // "name [shape] dtype"
  int64_t flops = 0;                         // multiply-adds x 2 for Conv/Gemm/MatMul
  bool folded = false;                       // evaluated at plan time (shape computations)
  bool unused = false;  // not run: only nodes folded at plan time read its outputs
};

struct ModelReport {
  std::vector<NodeReport> nodes;
  int64_t parameters = 0;  // elements of constants read by nodes
  int64_t parameter_bytes = 0;
  int64_t flops = 0;
  size_t arena_bytes = 0;      // planned activation memory (peak)
  size_t unplanned_bytes = 0;  // the same activations without buffer reuse
  int64_t batch = 1;
  // Quantized graphs: QuantizeLinear / DequantizeLinear nodes that remain (graph borders, Q/DQ
  // pairs the QDQ import could not fuse) and the ops that read a DequantizeLinear output, i.e.
  // run in float ("DnnlGemm 'fc'").
  int quantize_nodes = 0, dequantize_nodes = 0;
  std::vector<std::string> float_after_dequantize;
};

ModelReport inspect_model(const Model& m, int64_t batch);
std::string format_report(const Model& m, const ModelReport& r);

}  // namespace engine
