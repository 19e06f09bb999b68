// Lowers float32 ops to the oneDNN backend (backends/onednn). 2-D convolutions and pools become
// channels-last (NHWC) ops: NhwcConv, NhwcMaxPool, NhwcAveragePool, NhwcGlobalAveragePool and
// NhwcGlobalMaxPool in domain "engine"; Gemm / FusedGemm with constant weights become DnnlGemm
// (same layout, weights reordered once). Layout changes are explicit Transpose nodes, so `engine
// inspect` shows where they are. Consecutive NHWC ops share their NHWC values (no Transpose pair
// between them), and elementwise ops whose data inputs are all available in NHWC (an unfused
// Relu or residual Add) run on the NHWC values too. The NCHW form of a value is produced only if
// something still reads it (a reference op, a graph output); the others are removed as dead.
//
// Integer graphs (made by the quantization pass or imported): QConv / QLinearConv with constant
// int8 weights without zero points, group 1 or depthwise, become NhwcQConv (backends/x86, the
// same integers as QConv); QGemm / QLinearMatMul with constant int8 weights without zero points
// becomes a 1x1 NhwcQConv between two Reshapes (a viewed as [M,1,1,K]); uint8 / int8 MaxPool and
// GlobalMaxPool become the NHWC max pools; per-tensor QuantizeLinear / DequantizeLinear, QAdd /
// QLinearAdd and integer Relu / Clip follow NHWC inputs, and QGlobalAveragePool /
// QLinearGlobalAveragePool read them with channels_last = 1.
//
// Not lowered (they stay on the reference kernels): 1-D / 3-D convs, ConvTranspose, pools with
// ceil_mode, dilation or an Indices output, convs whose weights or bias are not constants, and
// integer convs with weight zero points or other groupings.
#include <memory>
#include <optional>

#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {

std::unique_ptr<Pass> make_remove_dead_pass();

namespace {

using namespace fusion;

const std::vector<int64_t> kToNhwc{0, 2, 3, 1}, kToNchw{0, 3, 1, 2};

bool is_rank4_f32(const ShapeInfo& s, int v) {
  return v >= 0 && s.rank(v) == 4 && s.dtype(v) == DType::F32;
}
bool is_q8(DType t) {
  return t == DType::U8 || t == DType::I8;
}
bool is_rank4_q8(const ShapeInfo& s, int v) {
  return v >= 0 && s.rank(v) == 4 && is_q8(s.dtype(v));
}
bool is_rank4(const ShapeInfo& s, int v) {
  return is_rank4_f32(s, v) || is_rank4_q8(s, v);
}
// Inputs [from, to) of n are constants (or omitted) holding one value each.
bool scalar_constants(const Graph& g, const Node& n, size_t from, size_t to) {
  for (size_t i = from; i < to && i < n.inputs.size(); ++i)
    if (n.inputs[i] >= 0 &&
        (!g.is_constant(n.inputs[i]) || g.value(n.inputs[i]).constant->numel() != 1))
      return false;
  return true;
}

// Input 5 (the weights' zero points of QConv / QLinearConv / QGemm, a constant) is absent or 0.
bool no_weight_zero_points(const Graph& g, const Node& n) {
  if (!has_input(n, 5)) return true;
  const Tensor& z = *g.value(n.inputs[5]).constant;
  for (int64_t i = 0; i < z.numel(); ++i)
    if (z.get_as_int(i) != 0) return false;
  return true;
}

// QConv / QLinearConv that NhwcQConv runs: 2-D, x uint8/int8, constant int8 weights with zero
// points 0 (or none), constant scales / zero points / bias, group 1 or depthwise.
bool lowerable_qconv(const Graph& g, const ShapeInfo& s, const Node& n) {
  const bool qconv = is_engine_op(n, "QConv"), qlinear = is_op(n, "QLinearConv");
  if ((!qconv && !qlinear) || n.outputs.size() != 1 || !is_rank4_q8(s, n.inputs[0])) return false;
  if (n.inputs.size() < 8) return false;
  const int w = n.inputs[3];
  if (!g.is_constant(w) || g.value(w).constant->dtype() != DType::I8 ||
      g.value(w).constant->rank() != 4)
    return false;
  for (size_t i : {1, 2, 4, 5, 6, 7, 8, 10, 11})
    if (has_input(n, i) && !g.is_constant(n.inputs[i])) return false;
  if (!no_weight_zero_points(g, n)) return false;
  if (has_input(n, 9) && !is_rank4_q8(s, n.inputs[9])) return false;
  const Tensor& W = *g.value(w).constant;
  const int64_t group = n.attrs.get_int("group", 1);  // C = group * W.dim(1)
  return group == 1 || (W.dim(1) == 1 && group == W.dim(0));
}

// QGemm (or ONNX QLinearMatMul: the same inputs, no bias, float requantization) with a 2-D
// uint8/int8 a and constant int8 b without zero points (constant scales, zero points and bias):
// runs as a 1x1 NhwcQConv on a viewed as [M,1,1,K] (same integers).
bool lowerable_qgemm(const Graph& g, const ShapeInfo& s, const Node& n) {
  const bool matmul = is_op(n, "QLinearMatMul");
  if ((!is_engine_op(n, "QGemm") && !matmul) || n.outputs.size() != 1 || n.inputs.size() < 8)
    return false;
  const int a = n.inputs[0], b = n.inputs[3];
  if (a < 0 || s.rank(a) != 2 || !is_q8(s.dtype(a)) || n.attrs.get_int("transA", 0) != 0)
    return false;
  if (!g.is_constant(b) || g.value(b).constant->dtype() != DType::I8 ||
      g.value(b).constant->rank() != 2)
    return false;
  for (size_t i : {1, 2, 4, 5, 6, 7, 8})
    if (has_input(n, i) && !g.is_constant(n.inputs[i])) return false;
  if (!no_weight_zero_points(g, n)) return false;
  return true;
}

bool all_ones(const Node& n, const char* attr) {
  for (int64_t x : n.attrs.get_ints(attr, {}))
    if (x != 1) return false;
  return true;
}

// The NHWC op replacing n, or "" if n is not lowered.
std::string lowered_op(const Graph& g, const ShapeInfo& s, const Node& n) {
  if (is_gemm_like(n) && n.outputs.size() == 1 && n.inputs.size() >= 2 &&
      s.rank(n.inputs[0]) == 2 && s.dtype(n.inputs[0]) == DType::F32) {
    const Tensor* b = f32_constant(g, n.inputs[1]);
    const bool has_c = n.inputs.size() > 2 && n.inputs[2] >= 0;
    if (!b || b->rank() != 2 || n.attrs.get_int("transA", 0) != 0 ||
        n.attrs.get_float("alpha", 1.0f) != 1.0f ||
        (has_c && n.attrs.get_float("beta", 1.0f) != 1.0f))
      return "";
    const int64_t N = n.attrs.get_int("transB", 0) ? b->dim(0) : b->dim(1);
    if (has_c) {  // a row of N biases: [N] or [1, N]
      const Tensor* c = f32_constant(g, n.inputs[2]);
      if (!c || c->numel() != N || c->rank() > 2 || (c->rank() == 2 && c->dim(0) != 1)) return "";
    }
    return "DnnlGemm";
  }
  if (lowerable_qconv(g, s, n)) return "NhwcQConv";
  if (!n.inputs.empty() && is_rank4_q8(s, n.inputs[0]) && n.outputs.size() == 1) {
    if (is_op(n, "GlobalMaxPool")) return "NhwcGlobalMaxPool";
    if (is_op(n, "MaxPool") && n.attrs.get_int("ceil_mode", 0) == 0 && all_ones(n, "dilations"))
      return "NhwcMaxPool";
    return "";
  }
  if (n.inputs.empty() || !is_rank4_f32(s, n.inputs[0])) return "";
  if (is_conv_like(n)) {
    if (n.outputs.size() != 1 || !f32_constant(g, n.inputs[1])) return "";
    if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !f32_constant(g, n.inputs[2])) return "";
    if (n.inputs.size() > 3 && n.inputs[3] >= 0 && !is_rank4_f32(s, n.inputs[3])) return "";
    return "NhwcConv";
  }
  if (is_op(n, "GlobalAveragePool")) return "NhwcGlobalAveragePool";
  if (is_op(n, "GlobalMaxPool")) return "NhwcGlobalMaxPool";
  if (is_op(n, "MaxPool") || is_op(n, "AveragePool")) {
    if (n.outputs.size() != 1 || n.attrs.get_int("ceil_mode", 0) != 0 || !all_ones(n, "dilations"))
      return "";
    return is_op(n, "MaxPool") ? "NhwcMaxPool" : "NhwcAveragePool";
  }
  return "";
}

// Elementwise ops that give the same result on a transposed input: one data input (input 0; the
// others, e.g. Clip's bounds or per-tensor quantization parameters, are scalars), or two data
// inputs of the same shape (no broadcast).
bool layout_free_unary(const Graph& g, const Node& n) {
  if (n.domain.empty() && (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear"))
    return n.outputs.size() == 1 && scalar_constants(g, n, 1, n.inputs.size());
  if (!n.domain.empty()) return false;
  for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
                         "Selu", "Softplus", "Identity"})
    if (n.op_type == op) return n.inputs.size() == 1;
  if (n.op_type == "Clip") return scalar_constants(g, n, 1, n.inputs.size());
  return false;
}

// QGlobalAveragePool / QLinearGlobalAveragePool on a rank-4 integer input: runs on the NHWC form
// of its input when there is one (attribute channels_last = 1; the output [N,1,1,C] goes back to
// NCHW in one small Transpose instead of the whole feature map).
bool channels_last_qpool(const Graph& g, const ShapeInfo& s, const Node& n) {
  const bool pool =
      is_engine_op(n, "QGlobalAveragePool") || is_ms_op(n, "QLinearGlobalAveragePool");
  return pool && n.outputs.size() == 1 && is_rank4_q8(s, n.inputs[0]) &&
         n.attrs.get_int("channels_last", 0) == 0 && scalar_constants(g, n, 1, n.inputs.size());
}

bool layout_free_float_binary(const ShapeInfo& s, const Node& n) {
  if (!n.domain.empty() || n.inputs.size() != 2) return false;
  if (n.op_type != "Add" && n.op_type != "Mul" && n.op_type != "Sub" && n.op_type != "Div" &&
      n.op_type != "Max" && n.op_type != "Min")
    return false;
  return is_rank4_f32(s, n.inputs[0]) && s.same_shape(n.inputs[0], n.inputs[1]);
}

// The data inputs of a layout-free binary op: Add, Mul, ... (0, 1) or QAdd / QLinearAdd (0, 3; the
// others are per-tensor parameters), or nothing.
std::optional<std::pair<size_t, size_t>> layout_free_binary(const Graph& g, const ShapeInfo& s,
                                                            const Node& n) {
  const bool qadd = is_engine_op(n, "QAdd") || is_ms_op(n, "QLinearAdd");
  if (qadd && n.inputs.size() >= 7 && scalar_constants(g, n, 1, 3) &&
      scalar_constants(g, n, 4, n.inputs.size()) && is_rank4_q8(s, n.inputs[0]) &&
      s.same_shape(n.inputs[0], n.inputs[3]))
    return std::make_pair(size_t(0), size_t(3));
  if (layout_free_float_binary(s, n)) return std::make_pair(size_t(0), size_t(1));
  return std::nullopt;
}

class LowerOnednnPass : public Pass {
 public:
  bool backend() const override { return true; }
  std::string name() const override { return "lower-onednn"; }
  std::string description() const override {
    return "lower float and integer 2-D Conv/pools to channels-last ops (Transposes only at layout "
           "borders) and Gemm with constant weights to oneDNN inner products";
  }
  bool run(Graph& g, const PassContext& ctx) const override {
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    if (!shapes) return false;
    const ShapeInfo& s = *shapes;
    std::vector<int> nhwc(g.values.size(), -1);  // value -> its NHWC twin
    std::vector<Node> out;
    bool changed = false;
    auto transpose = [&](int from, int to, const std::vector<int64_t>& perm) {
      Node t;
      t.name = g.value(to).name;
      t.op_type = "Transpose";
      t.opset = g.opset;
      t.inputs = {from};
      t.outputs = {to};
      t.attrs.set("perm", perm);
      out.push_back(std::move(t));
    };
    auto to_nhwc = [&](int v) {
      if (nhwc[size_t(v)] < 0) {
        const int t = add_fresh_value(g, g.value(v).name + "_nhwc");
        g.value(t).dtype = s.dtype(v);
        nhwc.resize(g.values.size(), -1);
        nhwc[size_t(v)] = t;
        transpose(v, t, kToNhwc);
      }
      return nhwc[size_t(v)];
    };
    // Emits `n` computing NHWC outputs, then the Transposes back to the original values.
    auto emit_nhwc = [&](Node n) {
      const std::vector<int> orig = n.outputs;
      for (int& o : n.outputs) {
        const DType dt = g.value(o).dtype;
        o = add_fresh_value(g, g.value(o).name + "_nhwc");
        g.value(o).dtype = dt;
        nhwc.resize(g.values.size(), -1);
      }
      out.push_back(n);
      for (size_t i = 0; i < orig.size(); ++i) {
        nhwc[size_t(orig[i])] = n.outputs[i];
        transpose(n.outputs[i], orig[i], kToNchw);
      }
      changed = true;
    };
    for (Node& n : g.nodes) {
      const std::string op = lowered_op(g, s, n);
      if (lowerable_qgemm(g, *shapes, n)) {
        lower_qgemm(g, n, out);
        changed = true;
        continue;
      }
      if (op == "DnnlGemm") {  // no layout change
        n.op_type = op;
        n.domain = kEngineDomain;
        out.push_back(std::move(n));
        changed = true;
        continue;
      }
      if (!op.empty()) {
        Node l = n;
        l.op_type = op;
        l.domain = kEngineDomain;
        l.inputs[0] = to_nhwc(n.inputs[0]);
        if (op == "NhwcConv" && has_input(l, 3)) l.inputs[3] = to_nhwc(l.inputs[3]);
        if (op == "NhwcQConv" && has_input(l, 9)) l.inputs[9] = to_nhwc(l.inputs[9]);
        if (is_op(n, "QLinearConv")) l.attrs.set("requant", std::string("float"));
        emit_nhwc(std::move(l));
        continue;
      }
      if (channels_last_qpool(g, s, n) && nhwc[size_t(n.inputs[0])] >= 0) {
        Node l = n;
        l.inputs[0] = nhwc[size_t(n.inputs[0])];
        l.attrs.set("channels_last", int64_t(1));
        emit_nhwc(std::move(l));
        continue;
      }
      const bool unary =
          layout_free_unary(g, n) && is_rank4(s, n.inputs[0]) && nhwc[size_t(n.inputs[0])] >= 0;
      const auto binary = layout_free_binary(g, s, n);
      const bool bin = binary && nhwc[size_t(n.inputs[binary->first])] >= 0 &&
                       nhwc[size_t(n.inputs[binary->second])] >= 0;
      if (unary || bin) {
        Node l = n;
        l.inputs[0] = nhwc[size_t(n.inputs[0])];
        if (bin) l.inputs[binary->second] = nhwc[size_t(n.inputs[binary->second])];
        emit_nhwc(std::move(l));
        continue;
      }
      out.push_back(std::move(n));
    }
    g.nodes = std::move(out);
    if (changed) make_remove_dead_pass()->run(g, ctx);
    return changed;
  }

 private:
  // QGemm -> Reshape a to [M,1,1,K] -> NhwcQConv with b as [N,K,1,1] weights -> Reshape to [M,N].
  static void lower_qgemm(Graph& g, const Node& n, std::vector<Node>& out) {
    const Tensor& b = *g.value(n.inputs[3]).constant;
    const bool trans_b = n.attrs.get_int("transB", 0) != 0;
    const int64_t N = trans_b ? b.dim(0) : b.dim(1), K = trans_b ? b.dim(1) : b.dim(0);
    Tensor w(DType::I8, {N, K, 1, 1});
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k)
        w.data<int8_t>()[j * K + k] = b.data<int8_t>()[trans_b ? j * K + k : k * N + j];
    auto value = [&](const std::string& base, DType dt) {
      const int v = add_fresh_value(g, base);
      g.value(v).dtype = dt;
      return v;
    };
    auto reshape = [&](int from, int to, const std::string& name, std::vector<int64_t> dims) {
      Tensor shape(DType::I64, {int64_t(dims.size())});
      std::copy(dims.begin(), dims.end(), shape.data<int64_t>());
      Node r;
      r.name = name;
      r.op_type = "Reshape";
      r.opset = g.opset;
      r.inputs = {from, add_constant(g, name + "_shape", std::move(shape))};
      r.outputs = {to};
      return r;
    };
    const int x4 = value(g.value(n.inputs[0]).name + "_as_nhwc", g.value(n.inputs[0]).dtype);
    const int y4 = value(g.value(n.outputs[0]).name + "_nhwc", g.value(n.outputs[0]).dtype);
    Node conv = n;
    conv.op_type = "NhwcQConv";
    conv.domain = kEngineDomain;
    conv.opset = 1;
    conv.attrs.erase("transB");
    conv.attrs.erase("transA");
    if (is_op(n, "QLinearMatMul")) conv.attrs.set("requant", std::string("float"));
    conv.inputs[0] = x4;
    conv.inputs[3] = add_constant(g, n.name + "_weight_1x1", std::move(w));
    conv.outputs = {y4};
    out.push_back(reshape(n.inputs[0], x4, n.name + "_as_nhwc", {0, 1, 1, -1}));
    out.push_back(std::move(conv));
    out.push_back(reshape(y4, n.outputs[0], n.name + "_as_2d", {0, -1}));
  }
};

}  // namespace

std::unique_ptr<Pass> make_lower_onednn_pass() {
  return std::make_unique<LowerOnednnPass>();
}

}  // namespace engine
