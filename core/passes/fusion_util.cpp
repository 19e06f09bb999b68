#include "core/passes/fusion_util.h"

#include <algorithm>
#include <limits>

#include "core/executor.h"
#include "core/pass.h"

namespace engine::fusion {

// ---------------------------------------------------------------- GraphIndex

GraphIndex::GraphIndex(const Graph& g) : g_(g), dead_(g.nodes.size(), false) {
  refresh();
}

void GraphIndex::refresh() {
  const size_t nv = g_.values.size();
  producer_.assign(nv, -1);
  consumers_.assign(nv, {});
  is_output_.assign(nv, false);
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (dead_[i]) continue;
    for (int v : g_.nodes[i].outputs) producer_[size_t(v)] = int(i);
    for (int v : g_.nodes[i].inputs)
      if (v >= 0) consumers_[size_t(v)].push_back(int(i));
  }
  for (int v : g_.outputs) is_output_[size_t(v)] = true;
}

const std::vector<int>& GraphIndex::consumers(int v) const {
  static const std::vector<int> none;
  return v >= 0 && size_t(v) < consumers_.size() ? consumers_[size_t(v)] : none;
}

bool GraphIndex::is_graph_output(int v) const {
  return v >= 0 && size_t(v) < is_output_.size() && is_output_[size_t(v)];
}

bool GraphIndex::only_read_by(int v, int node) const {
  const std::vector<int>& c = consumers(v);
  return c.size() == 1 && c[0] == node && !is_graph_output(v);
}

bool rewrite_nodes(Graph& g, const std::function<bool(GraphIndex&, int)>& rewrite) {
  GraphIndex idx(g);
  bool changed = false, again = true;
  while (again) {
    again = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (idx.dead(int(i)) || !rewrite(idx, int(i))) continue;
      idx.refresh();
      changed = again = true;
    }
  }
  remove_nodes(g, idx.dead_mask());
  return changed;
}

// ---------------------------------------------------------------- node and constant helpers

bool is_op(const Node& n, const char* op_type) {
  return n.domain.empty() && n.op_type == op_type;
}

bool is_engine_op(const Node& n, const char* op_type) {
  return n.domain == kEngineDomain && n.op_type == op_type;
}

bool is_ms_op(const Node& n, const char* op_type) {
  return n.domain == "com.microsoft" && n.op_type == op_type;
}

bool is_conv_like(const Node& n) {
  return is_op(n, "Conv") || is_engine_op(n, "FusedConv");
}

bool is_gemm_like(const Node& n) {
  return is_op(n, "Gemm") || is_engine_op(n, "FusedGemm");
}

bool has_activation(const Node& n) {
  return n.domain == kEngineDomain && !n.attrs.get_string("activation", "").empty();
}

bool has_sum(const Node& n) {
  return is_engine_op(n, "FusedConv") && n.inputs.size() > 3 && n.inputs[3] >= 0;
}

const Tensor* f32_constant(const Graph& g, int v) {
  if (!g.is_constant(v)) return nullptr;
  const Tensor& t = *g.value(v).constant;
  return t.dtype() == DType::F32 ? &t : nullptr;
}

int add_fresh_value(Graph& g, const std::string& base) {
  std::string name = base;
  for (int k = 1; g.find_value(name) >= 0; ++k) name = str_cat(base, "_", k);
  return g.add_value(name);
}

int add_constant(Graph& g, const std::string& base, Tensor t) {
  const int id = add_fresh_value(g, base);
  Value& v = g.value(id);
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.has_shape = true;
  v.constant = std::move(t);
  return id;
}

void place_fused(Graph& g, GraphIndex& idx, const std::vector<int>& pattern, Node fused) {
  int last = -1;
  for (int n : pattern) last = std::max(last, n);
  for (int n : pattern)
    if (n != last) idx.kill(n);
  g.nodes[size_t(last)] = std::move(fused);
}

Node to_fused(const Node& n, size_t min_inputs) {
  Node f = n;
  if (n.domain.empty()) {
    f.op_type = n.op_type == "Conv" ? "FusedConv" : "FusedGemm";
    f.domain = kEngineDomain;
    f.opset = 1;
    f.attrs.set("activation", std::string());
  }
  if (f.inputs.size() < min_inputs) f.inputs.resize(min_inputs, kNoValue);
  return f;
}

// ---------------------------------------------------------------- ShapeInfo

std::optional<ShapeInfo> ShapeInfo::infer(const Graph& g, const OpRegistry& reg) {
  ShapeInfo s;
  std::vector<Dims> in1, in2;
  for (int id : g.inputs) {
    const Value& v = g.value(id);
    if (!v.has_shape) return std::nullopt;
    Dims a = v.shape, b = v.shape;
    for (size_t d = 0; d < a.size(); ++d)
      if (a[d] < 0) {
        a[d] = 1;
        b[d] = 2;
        ++s.dynamic_dims_;
      }
    in1.push_back(a);
    in2.push_back(b);
  }
  try {
    // Shapes only, for a graph about to change: no kernel preparation (weight packing,
    // primitives), and no folding of large constants (dequantized weights).
    constexpr int64_t kFoldLimit = 4096;
    const Plan p1 = build_plan(g, reg, in1, {}, false, kFoldLimit),
               p2 = build_plan(g, reg, in2, {}, false, kFoldLimit);
    for (size_t v = 0; v < g.values.size(); ++v) {
      s.dtype_.push_back(p1.info[v].dtype == p2.info[v].dtype ? p1.info[v].dtype
                                                              : DType::Undefined);
      s.s1_.push_back(p1.info[v].shape);
      s.s2_.push_back(p2.info[v].shape);
    }
  } catch (const std::exception&) {
    return std::nullopt;  // e.g. a model that only runs at batch 1
  }
  return s;
}

bool ShapeInfo::known(int v) const {
  return v >= 0 && size_t(v) < dtype_.size() && dtype_[size_t(v)] != DType::Undefined;
}

bool ShapeInfo::same_shape(int a, int b) const {
  return known(a) && known(b) && dtype_[size_t(a)] == dtype_[size_t(b)] &&
         s1_[size_t(a)] == s1_[size_t(b)] && s2_[size_t(a)] == s2_[size_t(b)];
}

std::optional<Dims> ShapeInfo::static_shape(int v) const {
  if (!known(v) || s1_[size_t(v)] != s2_[size_t(v)]) return std::nullopt;
  return s1_[size_t(v)];
}

std::optional<Dims> ShapeInfo::shape_with_one_dynamic_dim(int v) const {
  if (!known(v) || dynamic_dims_ != 1) return std::nullopt;
  const Dims &a = s1_[size_t(v)], &b = s2_[size_t(v)];
  if (a.size() != b.size()) return std::nullopt;
  Dims r = a;
  int differ = 0;
  for (size_t d = 0; d < a.size(); ++d)
    if (a[d] != b[d]) {
      r[d] = -1;
      ++differ;
    }
  if (differ != 1) return std::nullopt;
  return r;
}

int ShapeInfo::rank(int v) const {
  if (!known(v) || s1_[size_t(v)].size() != s2_[size_t(v)].size()) return -1;
  return int(s1_[size_t(v)].size());
}

DType ShapeInfo::dtype(int v) const {
  return known(v) ? dtype_[size_t(v)] : DType::Undefined;
}

// ---------------------------------------------------------------- activations

namespace {

// A float32 scalar constant, or nullopt.
std::optional<float> scalar_f32(const Graph& g, int v) {
  const Tensor* t = f32_constant(g, v);
  if (!t || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// Clip bounds as constants (inputs from opset 11, attributes before), or false.
bool clip_bounds(const Graph& g, const Node& n, float& lo, float& hi) {
  lo = std::numeric_limits<float>::lowest();
  hi = std::numeric_limits<float>::max();
  if (n.opset < 11) {
    lo = n.attrs.get_float("min", lo);
    hi = n.attrs.get_float("max", hi);
    return true;
  }
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
    if (n.inputs[i] < 0) continue;
    const std::optional<float> b = scalar_f32(g, n.inputs[i]);
    if (!b) return false;
    (i == 1 ? lo : hi) = *b;
  }
  return true;
}

}  // namespace

std::optional<ActivationMatch> match_activation(const Graph& g, const GraphIndex& idx, int y,
                                                bool relu_clip_only) {
  if (idx.is_graph_output(y)) return std::nullopt;
  const std::vector<int>& readers = idx.consumers(y);
  ActivationMatch m;
  if (readers.size() == 1) {
    const Node& a = g.nodes[size_t(readers[0])];
    if (a.inputs.empty() || a.inputs[0] != y || a.outputs.size() != 1) return std::nullopt;
    m.nodes = {readers[0]};
    m.output = a.outputs[0];
    if (is_op(a, "Relu")) {
      m.name = "Relu";
    } else if (is_op(a, "Clip")) {
      m.name = "Clip";
      m.has_alpha = m.has_beta = true;
      if (!clip_bounds(g, a, m.alpha, m.beta)) return std::nullopt;
    } else if (relu_clip_only) {
      return std::nullopt;
    } else if (is_op(a, "LeakyRelu")) {
      m.name = "LeakyRelu";
      m.has_alpha = true;
      m.alpha = a.attrs.get_float("alpha", 0.01f);
    } else if (is_op(a, "Sigmoid")) {
      m.name = "Sigmoid";
    } else if (is_op(a, "HardSigmoid")) {
      m.name = "HardSigmoid";
      m.has_alpha = m.has_beta = true;
      m.alpha = a.attrs.get_float("alpha", 0.2f);
      m.beta = a.attrs.get_float("beta", 0.5f);
    } else if (is_op(a, "HardSwish")) {
      m.name = "HardSwish";
    } else {
      return std::nullopt;
    }
    return m;
  }
  // SiLU: y read by exactly a Sigmoid and a Mul(y, Sigmoid(y)) (either operand order).
  if (readers.size() != 2 || relu_clip_only) return std::nullopt;
  for (int k = 0; k < 2; ++k) {
    const int si = readers[size_t(k)], mi = readers[size_t(1 - k)];
    const Node& s = g.nodes[size_t(si)];
    const Node& mul = g.nodes[size_t(mi)];
    if (!is_op(s, "Sigmoid") || s.outputs.size() != 1 || !is_op(mul, "Mul") ||
        mul.inputs.size() != 2 || mul.outputs.size() != 1)
      continue;
    const int sv = s.outputs[0];
    const bool operands =
        (mul.inputs[0] == y && mul.inputs[1] == sv) || (mul.inputs[1] == y && mul.inputs[0] == sv);
    if (!operands || !idx.only_read_by(sv, mi)) continue;
    m.name = "SiLU";
    m.nodes = {si, mi};
    m.output = mul.outputs[0];
    return m;
  }
  return std::nullopt;
}

void set_activation(Node& n, const ActivationMatch& m) {
  n.attrs.set("activation", m.name);
  n.attrs.erase("act_alpha");
  n.attrs.erase("act_beta");
  if (m.has_alpha) n.attrs.set("act_alpha", m.alpha);
  if (m.has_beta) n.attrs.set("act_beta", m.beta);
}

std::optional<Bounds> bounds_of(const Node& n) {
  const std::string a = n.attrs.get_string("activation", "");
  Bounds b;
  if (a.empty()) return b;
  if (a == "Relu") {
    b.lo = 0.0f;
    return b;
  }
  if (a == "Clip") {
    b.lo = n.attrs.get_float("act_alpha", b.lo);
    b.hi = n.attrs.get_float("act_beta", b.hi);
    return b;
  }
  return std::nullopt;
}

void set_bounds(Node& f, const std::string& prefix, const Bounds& b) {
  f.attrs.set(prefix + "_min", b.lo);
  f.attrs.set(prefix + "_max", b.hi);
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v)
    if (e != x) return false;
  return true;
}

}  // namespace engine::fusion
