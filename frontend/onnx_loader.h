// ONNX model -> Graph IR. Checks the model and reports problems with node name and op type.
#pragma once

#include <string>

#include "core/graph.h"
#include "core/op_registry.h"

namespace engine {

struct LoadOptions {
  size_t max_file_bytes = size_t(4) << 30;  // protobuf cannot parse more than 2 GiB anyway
  size_t max_nodes = 1 << 20;
  // Longest chain of nodes from an input to an output (passes walk the graph iteratively, but a
  // model 65536 layers deep is not a CNN).
  size_t max_depth = 1 << 16;
  // Elements of one list attribute (ints, floats, strings) and bytes of one string attribute;
  // tensor attributes fall under the tensor limits.
  size_t max_attribute_elements = size_t(1) << 24;
  bool upcast_f16_initializers = true;
};

struct ModelInfo {
  int64_t ir_version = 0;
  int opset = 0;
  std::string producer;
  size_t file_bytes = 0;
};

// Loads and checks: every op must be registered (all unsupported ops are listed in one error).
Graph load_onnx(const std::string& path, const OpRegistry& reg, const LoadOptions& opt = {},
                ModelInfo* info = nullptr);
// From bytes in memory; external data is refused (no folder to resolve it in) unless base_dir.
Graph load_onnx_bytes(const std::string& bytes, const OpRegistry& reg, const LoadOptions& opt = {},
                      ModelInfo* info = nullptr, const std::string& base_dir = "",
                      const std::string& what = "model");

// Checks shared with the native-format loader (frontend/native.h). The node's input and output
// counts against its schema, then the schema's attribute validation; errors start with `where`.
void check_node(const OpSchema& s, const Node& n, const std::string& where);
// Longest chain of nodes (g in topological order) against `max_depth`.
void check_graph_depth(const Graph& g, size_t max_depth, const std::string& what);

}  // namespace engine
