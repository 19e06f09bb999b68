// Helpers shared by the fusion passes (core/passes/fuse_*.cpp, fold_*.cpp): a producer/consumer
// index that survives in-place rewrites, a rewrite driver, constant helpers, static shape
// inference, and matching of the activation that follows a value.
//
// Rewrite conventions: a pass edits nodes in place and marks the nodes it absorbs as dead; the
// fused node takes the place of the LAST node of the matched pattern (every input of the pattern
// is produced before that node, every reader of its output comes after it), so the node order
// stays topological. The fused node keeps the name of the conv/gemm it grew from and writes the
// pattern's final output value, so graph output names never change.
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/op_registry.h"

namespace engine::fusion {

constexpr const char* kEngineDomain = "engine";

// Who produces and who reads each value, over the live (not dead) nodes.
class GraphIndex {
 public:
  explicit GraphIndex(const Graph& g);
  void refresh();  // after an edit
  int producer(int v) const {
    return v >= 0 && size_t(v) < producer_.size() ? producer_[size_t(v)] : -1;
  }
  // Reading nodes, one entry per input slot (a node reading v twice appears twice).
  const std::vector<int>& consumers(int v) const;
  bool is_graph_output(int v) const;
  // Input slots reading v plus graph outputs naming v.
  int uses(int v) const { return int(consumers(v).size()) + (is_graph_output(v) ? 1 : 0); }
  // True if v is read exactly once, by `node`, and is not a graph output.
  bool only_read_by(int v, int node) const;
  void kill(int node) { dead_[size_t(node)] = true; }
  bool dead(int node) const { return dead_[size_t(node)]; }
  const std::vector<bool>& dead_mask() const { return dead_; }

 private:
  const Graph& g_;
  std::vector<int> producer_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> is_output_;
  std::vector<bool> dead_;
};

// Calls rewrite(index, i) for every live node i in order; rewrite returns true when it changed the
// graph (the index is then refreshed). Sweeps again until a sweep changes nothing, then removes
// the dead nodes. Returns whether anything changed.
bool rewrite_nodes(Graph& g, const std::function<bool(GraphIndex&, int)>& rewrite);

// Node kind tests (default domain unless said otherwise).
bool is_op(const Node& n, const char* op_type);         // default ONNX domain
bool is_engine_op(const Node& n, const char* op_type);  // domain "engine"
bool is_ms_op(const Node& n, const char* op_type);      // domain "com.microsoft"
// Input i is given (not omitted).
inline bool has_input(const Node& n, size_t i) {
  return n.inputs.size() > i && n.inputs[i] >= 0;
}
bool is_conv_like(const Node& n);    // Conv or FusedConv
bool is_gemm_like(const Node& n);    // Gemm or FusedGemm
bool has_activation(const Node& n);  // a FusedConv/FusedGemm with one
bool has_sum(const Node& n);         // a FusedConv with a Sum input
// The constant tensor of value v if it is a float32 constant, else nullptr.
const Tensor* f32_constant(const Graph& g, int v);
// A new value named `base`, or `base_1`, `base_2`, ... if that name is taken.
int add_fresh_value(Graph& g, const std::string& base);
// A value with a unique name derived from `base`, holding constant t.
int add_constant(Graph& g, const std::string& base, Tensor t);
// Replaces the matched nodes `pattern` by `fused`, which takes the place of the last of them; the
// others are marked dead.
void place_fused(Graph& g, GraphIndex& idx, const std::vector<int>& pattern, Node fused);
// Copy of a Conv/Gemm node turned into its engine-domain fused form (FusedConv / FusedGemm);
// inputs padded with kNoValue to `min_inputs`; activation "" (none) until set_activation.
Node to_fused(const Node& n, size_t min_inputs);

// Shapes of every value with the dynamic dims of the graph inputs set to 1, and again to 2.
// Shapes equal in both runs are treated as equal for any value of those dims.
class ShapeInfo {
 public:
  // nullopt when the graph cannot be inferred (an input of unknown rank, an inference error).
  static std::optional<ShapeInfo> infer(const Graph& g, const OpRegistry& reg);
  bool known(int v) const;
  // Same dtype and the same shape in both runs.
  bool same_shape(int a, int b) const;
  // The shape if it is the same in both runs.
  std::optional<Dims> static_shape(int v) const;
  // Shape with -1 at the one dim that differs between the runs (nullopt if several differ or the
  // graph has more than one dynamic input dim).
  std::optional<Dims> shape_with_one_dynamic_dim(int v) const;
  int rank(int v) const;  // -1 if unknown or different between runs
  DType dtype(int v) const;

 private:
  std::vector<DType> dtype_;
  std::vector<Dims> s1_, s2_;
  int dynamic_dims_ = 0;
};

// An activation reading value y that a fused node can absorb.
struct ActivationMatch {
  std::string name;  // activation attribute value: Relu, Clip, ...
  bool has_alpha = false, has_beta = false;
  float alpha = 0.0f, beta = 0.0f;
  std::vector<int> nodes;  // the activation's nodes (Sigmoid and Mul for SiLU)
  int output = -1;         // the value it produces
};
// Matches Relu | Clip (constant bounds) | LeakyRelu | Sigmoid | HardSigmoid | HardSwish |
// SiLU = Mul(y, Sigmoid(y)) (only Relu and Clip when relu_clip_only) reading y, when y has no
// other reader and is not a graph output.
std::optional<ActivationMatch> match_activation(const Graph& g, const GraphIndex& idx, int y,
                                                bool relu_clip_only = false);
// Sets activation / act_alpha / act_beta on a fused node.
void set_activation(Node& n, const ActivationMatch& m);

// A fused conv's activation as clamp bounds (the backend's own float kernels, which apply
// none / Relu / Clip as one min-max).
struct Bounds {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
};
// The activation of a lowered conv (activation / act_alpha / act_beta) as bounds: none, Relu,
// Clip; nullopt for any other.
std::optional<Bounds> bounds_of(const Node& n);
// Sets prefix_min / prefix_max on a fused node.
void set_bounds(Node& f, const std::string& prefix, const Bounds& b);

bool all_equal(const std::vector<int64_t>& v, int64_t x);  // every element is x

}  // namespace engine::fusion
