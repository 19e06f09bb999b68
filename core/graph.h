// The graph IR: values (tensors by name) and nodes (ops with typed attributes).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/attributes.h"
#include "core/tensor.h"

namespace engine {

// Quantization parameters of a value (empty scale = not quantized). Filled by quant passes.
struct QuantParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int axis = -1;  // -1: per tensor
  int bits = 8;
  bool empty() const { return scale.empty(); }
};

struct Value {
  std::string name;
  DType dtype = DType::Undefined;
  Dims shape;              // dims < 0 are unknown (e.g. dynamic batch); meaningful if has_shape
  bool has_shape = false;  // false: rank unknown
  std::optional<Tensor> constant;  // initializers and folded constants
  QuantParams quant;
};

constexpr int kNoValue = -1;  // an omitted optional input

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;        // "" = default ONNX domain
  int opset = 0;             // opset version of `domain` imported by the model
  std::vector<int> inputs;   // value ids, kNoValue for omitted optional inputs
  std::vector<int> outputs;  // value ids
  Attributes attrs;
  // "Conv 'name'" for messages.
  std::string label() const { return op_type + " '" + name + "'"; }
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;  // kept in topological order by the passes
  std::vector<int> inputs;  // runtime inputs (not constants)
  std::vector<int> outputs;
  int opset = 0;  // default-domain opset

  int add_value(const std::string& name);         // returns existing id if the name exists
  int find_value(const std::string& name) const;  // -1 if absent
  Value& value(int id) { return values.at(size_t(id)); }
  const Value& value(int id) const { return values.at(size_t(id)); }
  bool is_constant(int id) const { return id >= 0 && values[size_t(id)].constant.has_value(); }
  // Renames every use of value `from` (in nodes and graph outputs) to `to`.
  void replace_uses(int from, int to);
  // Index of the node producing each value (-1 for inputs/constants).
  std::vector<int> producers() const;
  // Number of node inputs plus graph outputs reading each value.
  std::vector<int> use_counts() const;
  // Builds a name index after bulk edits of `values`.
  void reindex();

 private:
  std::unordered_map<std::string, int> index_;
};

}  // namespace engine
