// The kernel registry: how core knows operators without including ops/ or backends/.
// An OpSchema gives, for one op type, shape/dtype inference and the kernel that runs it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/graph.h"

namespace engine {

// Shape inference sees concrete input shapes (the executor specializes the graph to the actual
// input shapes before planning) and, where known, input values: constants, or small tensors that
// were computed from shapes (Shape -> Gather -> Concat -> Reshape chains).
class InferContext {
 public:
  struct Input {
    DType dtype = DType::Undefined;
    Dims shape;
    const Tensor* value = nullptr;  // known data, or nullptr
  };
  InferContext(const Node& node, std::vector<Input> inputs)
      : node_(node), inputs_(std::move(inputs)), outputs_(node.outputs.size()) {}

  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int opset() const { return node_.opset; }
  int num_inputs() const { return int(inputs_.size()); }
  int num_outputs() const { return int(outputs_.size()); }
  // An input counts as present if it exists and was not omitted ("" in ONNX).
  bool has_input(int i) const {
    return i < num_inputs() && inputs_[size_t(i)].dtype != DType::Undefined;
  }
  DType dtype(int i) const { return input(i).dtype; }
  const Dims& shape(int i) const { return input(i).shape; }
  int rank(int i) const { return int(input(i).shape.size()); }
  // Known data of input i; throws if not known (e.g. a Reshape shape computed at run time from
  // activations, which this engine does not support).
  const Tensor& value(int i) const;
  const Tensor* value_or_null(int i) const { return has_input(i) ? input(i).value : nullptr; }

  void set_output(int i, DType dtype, Dims shape);
  // For outputs computable from input shapes alone (Shape, Size): gives the value itself, so
  // shape computations fold at plan time even when their inputs are activations.
  void set_output_value(int i, Tensor value);
  const std::vector<Tensor>& known_outputs() const { return known_outputs_; }
  struct Output {
    DType dtype = DType::Undefined;
    Dims shape;
    bool set = false;
  };
  const std::vector<Output>& outputs() const { return outputs_; }

 private:
  const Input& input(int i) const;
  const Node& node_;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
  std::vector<Tensor> known_outputs_;  // empty, or one per output (undefined = not known)
};

// Inputs and pre-allocated outputs (shapes from inference) of one node execution.
struct KernelContext {
  const Node& node;
  std::vector<const Tensor*> inputs;  // nullptr for omitted optional inputs
  std::vector<Tensor*> outputs;
  int num_threads = 1;
  // What the op's `prepare` built for this node and these shapes (nullptr without prepare).
  const void* state = nullptr;

  const Attributes& attrs() const { return node.attrs; }
  bool has_input(int i) const { return i < int(inputs.size()) && inputs[size_t(i)]; }
  const Tensor& in(int i) const {
    ENGINE_CHECK(has_input(i), "missing input ", i);
    return *inputs[size_t(i)];
  }
  Tensor& out(int i) const { return *outputs.at(size_t(i)); }
};

using InferFn = std::function<void(InferContext&)>;
using KernelFn = std::function<void(KernelContext&)>;
// Runs once per execution plan (concrete shapes; constant inputs known, e.g. weights) with the
// node's inference context, and returns per-node state the kernel reuses on every run: a oneDNN
// primitive, weights reordered into the layout it wants. The state must be safe to read from
// several threads at once.
using PrepareFn = std::function<std::shared_ptr<const void>(const InferContext&)>;

struct OpSchema {
  std::string op_type;
  std::string domain;  // "" = default ONNX domain
  int min_inputs = 1;
  int max_inputs = 1;
  int min_outputs = 1;
  int max_outputs = 1;
  InferFn infer;
  KernelFn kernel;
  // Called once per node after loading, to reject attribute values we do not support with a
  // clear message (before anything runs). Optional.
  std::function<void(const Node&)> validate;
  PrepareFn prepare;  // optional
  // Output 0 may be written over input `inplace_input` when this node is that input's last
  // reader and both have the same size (e.g. a conv adding a residual Sum into its output):
  // the memory planner then gives both one buffer. The kernel must handle either case. -1: never.
  int inplace_input = -1;
  // Whether the kernel runs here (CPU features, the ISA level ENGINE_ISA selects); asked by
  // passes that make this op. Empty: always.
  std::function<bool()> available = nullptr;
};

class OpRegistry {
 public:
  void add(OpSchema schema);
  const OpSchema* find(const std::string& domain, const std::string& op_type) const;
  std::vector<std::string> op_types() const;

 private:
  std::map<std::pair<std::string, std::string>, OpSchema> schemas_;
};

}  // namespace engine
