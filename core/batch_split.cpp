// batch_separable (core/executor.h): whether every executed node treats the batch elements
// independently, so that running slices of the batch gives slices of the whole-batch outputs.
// A whitelist: an op not listed here, or listed but used along the batch axis, keeps the whole
// batch together. The plan's shapes must show dimension 0 = N on every input and output of
// every executed node; inputs known at plan time must be graph constants broadcast over the batch
// (rank below the output's or dimension 0 = 1), except the shape input of Reshape.
#include <map>
#include <set>
#include <string>

#include "core/executor.h"

namespace engine {
namespace {

// Elementwise ops (numpy broadcasting): their computed inputs must have the output's rank (a
// lower-rank batched input would be broadcast across the batch).
const std::set<std::string>& elementwise_ops() {
  static const std::set<std::string> ops = {
      "Relu", "Clip",       "Sigmoid",  "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish",
      "Elu",  "Selu",       "Softplus", "Exp",  "Log",       "Abs",         "Neg",
      "Sqrt", "Reciprocal", "Floor",    "Ceil", "Erf",       "Identity",    "Cast",
      "Add",  "Sub",        "Mul",      "Div",  "Pow",       "Max",         "Min",
      "Sum",  "Mean",       "PRelu",    "QAdd", "QMul",      "QLinearAdd",  "QLinearMul",
      "QLut", "QRelu"};
  return ops;
}

// Per-sample ops with constant weights: the input index that must be a constant.
const std::map<std::string, int>& weighted_ops() {
  static const std::map<std::string, int> ops = {
      {"Conv", 1},      {"ConvInteger", 1}, {"NhwcConv", 1},   {"DnnlConv", 1},
      {"QConv", 3},     {"QLinearConv", 3}, {"NhwcQConv", 3},  {"Gemm", 1},
      {"DnnlGemm", 1},  {"QGemm", 3},       {"MatMul", 1},     {"MatMulInteger", 1},
      {"FusedConv", 1}, {"FusedGemm", 1},   {"NhwcMBConv", 3}, {"NhwcStem", 1}};
  return ops;
}

// Other per-sample ops without batch-related attributes (reshapes are checked through shapes).
const std::set<std::string>& per_sample_ops() {
  static const std::set<std::string> ops = {"MaxPool",
                                            "AveragePool",
                                            "GlobalAveragePool",
                                            "GlobalMaxPool",
                                            "NhwcMaxPool",
                                            "NhwcAveragePool",
                                            "NhwcGlobalAveragePool",
                                            "NhwcGlobalMaxPool",
                                            "QAveragePool",
                                            "QGlobalAveragePool",
                                            "QLinearAveragePool",
                                            "QLinearGlobalAveragePool",
                                            "QMaxPool",
                                            "BatchNormalization",
                                            "InstanceNormalization",
                                            "LRN",
                                            "Reshape",
                                            "Flatten",
                                            "Squeeze",
                                            "Unsqueeze"};
  return ops;
}

int64_t norm_axis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + int64_t(rank) : axis;
}

const Dims& shape_of(const Plan& p, int id) {
  return p.info[size_t(id)].shape;
}

// The op-specific conditions of node n (shapes from the plan).
bool node_ok(const Plan& p, const Node& n) {
  const std::string& op = n.op_type;
  const size_t out_rank = shape_of(p, n.outputs[0]).size();
  if (elementwise_ops().count(op) || per_sample_ops().count(op)) return true;
  if (auto w = weighted_ops().find(op); w != weighted_ops().end()) {
    const int wi = w->second;
    if (int(n.inputs.size()) <= wi || n.inputs[size_t(wi)] < 0 ||
        !p.known[size_t(n.inputs[size_t(wi)])])
      return false;
    const size_t a_rank = shape_of(p, n.inputs[0]).size();
    if (op == "Gemm" || op == "DnnlGemm" || op == "QGemm" || op == "FusedGemm")  // rows of A
      return n.attrs.get_int("transA", 0) == 0 && a_rank == 2;
    if (op == "MatMul" || op == "MatMulInteger")
      return a_rank >= 2 && shape_of(p, n.inputs[1]).size() == 2;
    return true;
  }
  if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    // Per-axis parameters must not run along the batch.
    if (n.inputs.size() < 2 || n.inputs[1] < 0 || !p.known[size_t(n.inputs[1])]) return false;
    return p.known[size_t(n.inputs[1])]->numel() == 1 ||
           norm_axis(n.attrs.get_int("axis", 1), out_rank) != 0;
  }
  if (op == "Transpose") {
    const std::vector<int64_t> perm = n.attrs.get_ints("perm", {});
    return !perm.empty() && perm[0] == 0;
  }
  if (op == "Concat" || op == "QConcat" || op == "QLinearConcat")
    return norm_axis(n.attrs.get_int("axis", 0), out_rank) != 0;
  if (op == "Softmax" || op == "LogSoftmax")
    return norm_axis(n.attrs.get_int("axis", -1), out_rank) != 0;
  return false;
}

}  // namespace

bool batch_separable(const Graph& g, const Plan& p) {
  if (g.inputs.empty() || p.steps.empty()) return false;
  const int64_t N =
      p.info[size_t(g.inputs[0])].shape.empty() ? -1 : p.info[size_t(g.inputs[0])].shape[0];
  if (N < 2) return false;
  const auto batched = [&](int id) {
    const Dims& d = p.info[size_t(id)].shape;
    return !d.empty() && d[0] == N;
  };
  for (int id : g.inputs)
    if (!batched(id) || p.known[size_t(id)]) return false;
  for (int id : g.outputs)
    if (!batched(id) || p.known[size_t(id)]) return false;
  try {
    for (int ni : p.steps) {
      const Node& n = g.nodes[size_t(ni)];
      if (n.outputs.empty() || !node_ok(p, n)) return false;
      for (int id : n.outputs)
        if (id >= 0 && !batched(id)) return false;
      // The data input (input 0) is computed from the batch.
      if (n.inputs.empty() || n.inputs[0] < 0 || p.known[size_t(n.inputs[0])]) return false;
      const bool elementwise = elementwise_ops().count(n.op_type) > 0;
      const size_t out_rank = shape_of(p, n.outputs[0]).size();
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const int id = n.inputs[i];
        if (id < 0) continue;
        const Dims& d = shape_of(p, id);
        if (!p.known[size_t(id)]) {
          if (!batched(id) || (elementwise && d.size() != out_rank)) return false;
          continue;
        }
        if (n.op_type == "Reshape" && i == 1) continue;  // a target shape, per plan
        // Known inputs must be graph constants (a value computed at plan time from the inputs'
        // shapes could depend on N); an elementwise op's must broadcast over the batch.
        if (!g.is_constant(id)) return false;
        if (elementwise && d.size() >= out_rank && !d.empty() && d[0] != 1) return false;
      }
    }
  } catch (...) {  // a malformed attribute: keep the batch together, the kernels report it
    return false;
  }
  return true;
}

}  // namespace engine
