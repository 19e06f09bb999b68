// The "import-qdq" pass: QDQ graphs (ONNX Runtime's quantizer, PyTorch's exporter, QAT tools)
// become the engine's integer IR, the same ops the quantization pass writes (quant/quantize.h).
//
// A QDQ graph is a float graph with DequantizeLinear (DQ) on the inputs of an op and
// QuantizeLinear (Q) on its output. Each rule below is registered by op type and has a selector
// (does the op read DQ'd integers and does a Q read its result? it returns a Match and changes
// nothing) and an action (writes the integer node in place of the op, the activation between
// the op and Q, Q, and an integer Clip after Q). Matched:
//   Conv -> QConv; Gemm, MatMul (constant 2-D B, 2-D A) -> QGemm; Add -> QAdd; Mul -> QMul;
//   Concat -> QConcat; AveragePool / GlobalAveragePool -> QAveragePool / QGlobalAveragePool;
//   MaxPool, GlobalMaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze (Q with the DQ's own
//   scale and zero point) run on the integers; unary elementwise ops (Sigmoid, Tanh, HardSwish,
//   LeakyRelu, ...) and Q(DQ(x)) with other parameters become QLut, a 256-entry table computed
//   with the op's own float kernel; Q(DQ(x)) with the same parameters is x.
// Weights and biases are constant DQs (int8 / uint8 weights per tensor or per output channel,
// int32 biases re-expressed in the accumulator's scale x_scale * w_scale[oc]; a float bias is
// quantized to it). Integer nodes use float requantization (requant = "float"), the ONNX
// QLinearConv definition, so they compute what the QDQ graph computes in float up to float
// rounding. A Relu or Clip between the op and Q becomes the output clamp (Q is monotonic:
// Q(max(v, 0)) = max(Q(v), Q(0))); a Clip on the integers after Q (QAT at 2-7 bits) narrows it
// further and sets the value's bit width.
//
// Anything else stays as it was: DQ -> float op -> Q runs in float (`engine inspect` counts the
// QuantizeLinear / DequantizeLinear nodes that remain). The pass runs before constant folding
// so the weights are still integers; DQs of constants that no integer node took are folded to
// float afterwards.
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/executor.h"
#include "core/pass.h"
#include "core/passes/fusion_util.h"
#include "quant/fixedpoint.h"

namespace engine {

std::unique_ptr<Pass> make_remove_dead_pass();

namespace {

using namespace fusion;

bool is_q8(DType t) {
  return t == DType::U8 || t == DType::I8;
}
int32_t container_min(DType t) {
  return t == DType::U8 ? 0 : -128;
}
int32_t container_max(DType t) {
  return t == DType::U8 ? 255 : 127;
}

// Integer value i of a constant tensor of an integer type.
int64_t int_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::U8:
      return t.data<uint8_t>()[i];
    case DType::I8:
      return t.data<int8_t>()[i];
    case DType::I32:
      return t.data<int32_t>()[i];
    default:
      fail("internal: int_at on ", dtype_name(t.dtype()));
  }
}

struct Ctx {
  Graph& g;
  const OpRegistry& reg;
  GraphIndex& idx;
  const std::optional<ShapeInfo>& shapes;

  const Node& node(int i) const { return g.nodes[size_t(i)]; }
  const Tensor* constant(int v) const { return g.is_constant(v) ? &*g.value(v).constant : nullptr; }
  DType dtype(int v) const {
    if (g.value(v).dtype != DType::Undefined) return g.value(v).dtype;
    return shapes ? shapes->dtype(v) : DType::Undefined;
  }
  // The single node reading v at one slot, if v is not a graph output; else -1.
  int sole_reader(int v) const {
    const std::vector<int>& c = idx.consumers(v);
    return c.size() == 1 && !idx.is_graph_output(v) ? c[0] : -1;
  }
};

bool scalar_f32(const Tensor* t, float& out) {
  if (!t || t->dtype() != DType::F32 || t->numel() != 1) return false;
  out = t->data<float>()[0];
  return std::isfinite(out) && out > 0.0f;
}

// ---------------------------------------------------------------- selectors

// Per-tensor parameters of a QuantizeLinear / DequantizeLinear node (inputs 1 and 2).
struct QParams {
  int scale = -1, zp = -1;  // constant values (zp may be kNoValue)
  float s = 1.0f;
  int32_t z = 0;
  DType t = DType::U8;
};

// Reads a positive scalar scale and a scalar uint8 / int8 zero point; without a zero point the
// type is `no_zp_type` (z = 0).
bool read_params(const Ctx& c, const Node& n, DType no_zp_type, QParams& p) {
  p.scale = n.inputs[1];
  p.zp = n.inputs.size() > 2 ? n.inputs[2] : kNoValue;
  if (!scalar_f32(c.constant(p.scale), p.s)) return false;
  p.t = no_zp_type;
  if (p.zp >= 0) {
    const Tensor* z = c.constant(p.zp);
    if (!z || z->numel() != 1 || !is_q8(z->dtype())) return false;
    p.t = z->dtype();
    p.z = int32_t(int_at(*z, 0));
  }
  return is_q8(p.t);
}

// The integers behind a DequantizeLinear output, quantized per tensor.
struct QIn : QParams {
  int q = -1;  // integer value read by the DQ
};

std::optional<QIn> dq_input(const Ctx& c, int v) {
  const int p = c.idx.producer(v);
  if (p < 0) return std::nullopt;
  const Node& n = c.node(p);
  if (!is_op(n, "DequantizeLinear") || n.inputs.size() < 2) return std::nullopt;
  QIn r;
  r.q = n.inputs[0];
  if (!read_params(c, n, c.dtype(r.q), r)) return std::nullopt;
  if (c.dtype(r.q) != DType::Undefined && c.dtype(r.q) != r.t) return std::nullopt;
  return r;
}

// The Q that quantizes value v (after an optional Relu / Clip when `allow_activation`), and an
// integer Clip reading Q's output.
struct QOut : QParams {
  std::vector<int> nodes;  // activation, Q, integer Clip (those present, in order)
  int value = -1;          // the integer value the matched pattern ends with
  int32_t lo = 0, hi = 0;  // clamp on the integers (set by q_tail)
  int bits = 8;
};

// Constant float bounds of a Clip node (opset >= 11 inputs, older attributes).
bool clip_bounds(const Ctx& c, const Node& n, float& lo, float& hi) {
  lo = -std::numeric_limits<float>::infinity();
  hi = std::numeric_limits<float>::infinity();
  if (n.opset > 0 && n.opset < 11) {
    lo = n.attrs.get_float("min", lo);
    hi = n.attrs.get_float("max", hi);
    return true;
  }
  for (size_t i = 1; i < 3 && i < n.inputs.size(); ++i) {
    if (n.inputs[i] < 0) continue;
    const Tensor* t = c.constant(n.inputs[i]);
    if (!t || t->dtype() != DType::F32 || t->numel() != 1) return false;
    (i == 1 ? lo : hi) = t->data<float>()[0];
  }
  return true;
}

// Q node `qn` (and the integer Clip after it).
std::optional<QOut> q_tail(const Ctx& c, int qn, QOut r) {
  const Node& q = c.node(qn);
  if (!is_op(q, "QuantizeLinear") || q.inputs.size() < 2 || q.outputs.size() != 1)
    return std::nullopt;
  if (!read_params(c, q, DType::U8, r)) return std::nullopt;
  r.nodes.push_back(qn);
  r.value = q.outputs[0];
  // The output type's range; q_output narrows it by the activation before Q afterwards.
  r.lo = container_min(r.t);
  r.hi = container_max(r.t);
  const int cl = c.sole_reader(r.value);
  if (cl >= 0) {
    const Node& k = c.node(cl);
    const Tensor* lo = k.inputs.size() > 1 && k.inputs[1] >= 0 ? c.constant(k.inputs[1]) : nullptr;
    const Tensor* hi = k.inputs.size() > 2 && k.inputs[2] >= 0 ? c.constant(k.inputs[2]) : nullptr;
    const bool lo_ok =
        k.inputs.size() < 2 || k.inputs[1] < 0 || (lo && lo->dtype() == r.t && lo->numel() == 1);
    const bool hi_ok =
        k.inputs.size() < 3 || k.inputs[2] < 0 || (hi && hi->dtype() == r.t && hi->numel() == 1);
    if (is_op(k, "Clip") && k.opset >= 11 && k.inputs[0] == r.value && lo_ok && hi_ok) {
      if (lo) r.lo = std::max(r.lo, int32_t(int_at(*lo, 0)));
      if (hi) r.hi = std::min(r.hi, int32_t(int_at(*hi, 0)));
      r.nodes.push_back(cl);
      r.value = k.outputs[0];
    }
  }
  if (r.lo > r.hi) return std::nullopt;  // an empty range: leave it to the float ops
  for (int b = 2; b <= 8; ++b) {
    const bool u = r.t == DType::U8 && r.lo == 0 && r.hi == (1 << b) - 1;
    const bool s = r.t == DType::I8 && r.lo == -(1 << (b - 1)) && r.hi == (1 << (b - 1)) - 1;
    if (u || s) {
      r.bits = b;
      break;
    }
  }
  return r;
}

std::optional<QOut> q_output(const Ctx& c, int v, bool allow_activation) {
  int reader = c.sole_reader(v);
  if (reader < 0) return std::nullopt;
  QOut r;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  const Node* act = &c.node(reader);
  if (allow_activation && (is_op(*act, "Relu") || is_op(*act, "Clip"))) {
    if (is_op(*act, "Relu")) {
      lo = 0.0f;
    } else if (!clip_bounds(c, *act, lo, hi)) {
      return std::nullopt;
    }
    r.nodes.push_back(reader);
    reader = c.sole_reader(act->outputs[0]);
    if (reader < 0) return std::nullopt;
  }
  if (c.node(reader).inputs[0] != (r.nodes.empty() ? v : act->outputs[0])) return std::nullopt;
  // Quantized bounds need Q's parameters: match Q first, then fold the float bounds in.
  std::optional<QOut> t = q_tail(c, reader, r);
  if (!t) return std::nullopt;
  const int32_t qmin = container_min(t->t), qmax = container_max(t->t);
  if (std::isfinite(lo)) t->lo = std::max(t->lo, quant::quantize_value(lo, t->s, t->z, qmin, qmax));
  if (std::isfinite(hi)) t->hi = std::min(t->hi, quant::quantize_value(hi, t->s, t->z, qmin, qmax));
  if (t->lo > t->hi) return std::nullopt;
  return t;
}

// Constant DQ weights: int8 / uint8 values, scales per tensor or per `axis` (`channels` of them).
struct QW {
  int w = -1, scale = -1, zp = kNoValue;
  std::vector<float> s;  // one per channel (or one)
};

std::optional<QW> dq_weight(const Ctx& c, int v, int axis) {
  const int p = c.idx.producer(v);
  if (p < 0) return std::nullopt;
  const Node& n = c.node(p);
  if (!is_op(n, "DequantizeLinear") || n.inputs.size() < 2) return std::nullopt;
  QW r;
  r.w = n.inputs[0];
  r.scale = n.inputs[1];
  r.zp = n.inputs.size() > 2 ? n.inputs[2] : kNoValue;
  const Tensor* w = c.constant(r.w);
  const Tensor* s = c.constant(r.scale);
  if (!w || !is_q8(w->dtype()) || !s || s->dtype() != DType::F32) return std::nullopt;
  if (axis >= w->rank()) return std::nullopt;
  const int64_t channels = w->dim(axis);
  if (s->numel() != 1) {
    int64_t a = n.attrs.get_int("axis", 1);
    if (a < 0) a += w->rank();
    if (s->rank() != 1 || a != axis || s->numel() != channels) return std::nullopt;
  }
  for (int64_t i = 0; i < s->numel(); ++i) {
    const float x = s->data<float>()[i];
    if (!(std::isfinite(x) && x > 0.0f)) return std::nullopt;
    r.s.push_back(x);
  }
  if (r.zp >= 0) {
    const Tensor* z = c.constant(r.zp);
    if (!z || z->dtype() != w->dtype() || z->numel() != s->numel()) return std::nullopt;
  }
  return r;
}

// The bias as int32 in the accumulator's scale x_s * w_s[oc]: from a DQ of an int32 constant
// (copied when its scale is exactly x_s * w_s and its zero point 0) or from a float constant.
std::optional<Tensor> bias_int32(const Ctx& c, int v, float xs, const QW& w, int64_t channels) {
  auto wscale = [&](int64_t oc) { return w.s.size() == 1 ? w.s[0] : w.s[size_t(oc)]; };
  Tensor out(DType::I32, {channels});
  auto put = [&](int64_t oc, double real) {
    const double q = std::nearbyint(real / (double(xs) * double(wscale(oc))));
    out.data<int32_t>()[oc] = int32_t(std::clamp(q, -2147483648.0, 2147483647.0));
  };
  if (const Tensor* f = c.constant(v)) {
    if (f->dtype() != DType::F32 || f->numel() != channels || f->rank() != 1) return std::nullopt;
    for (int64_t oc = 0; oc < channels; ++oc) put(oc, f->data<float>()[oc]);
    return out;
  }
  const int p = c.idx.producer(v);
  if (p < 0 || !is_op(c.node(p), "DequantizeLinear")) return std::nullopt;
  const Node& n = c.node(p);
  const Tensor* b = c.constant(n.inputs[0]);
  const Tensor* s = n.inputs.size() > 1 ? c.constant(n.inputs[1]) : nullptr;
  const Tensor* z = n.inputs.size() > 2 && n.inputs[2] >= 0 ? c.constant(n.inputs[2]) : nullptr;
  if (!b || b->dtype() != DType::I32 || b->numel() != channels || b->rank() != 1)
    return std::nullopt;
  if (!s || s->dtype() != DType::F32 || (s->numel() != 1 && s->numel() != channels))
    return std::nullopt;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 &&
      (!z || z->dtype() != DType::I32 || z->numel() != s->numel()))
    return std::nullopt;
  for (int64_t oc = 0; oc < channels; ++oc) {
    const int64_t i = s->numel() == 1 ? 0 : oc;
    const float sb = s->data<float>()[i];
    const int64_t zb = z ? int_at(*z, i) : 0;
    if (zb == 0 && sb == xs * wscale(oc)) {
      out.data<int32_t>()[oc] = b->data<int32_t>()[oc];  // already in the accumulator's scale
    } else {
      // What DequantizeLinear computes, in float32.
      put(oc, double(float(int_at(*b, oc) - zb) * sb));
    }
  }
  return out;
}

// ---------------------------------------------------------------- actions

// Zero point value of a QIn / QOut (a new uint8 0 when the model omitted it).
int zp_or_zero(Ctx& c, int zp, DType t, const std::string& base) {
  if (zp >= 0) return zp;
  return add_constant(c.g, base + "_zero_point",
                      t == DType::U8 ? Tensor::scalar<uint8_t>(0) : Tensor::scalar<int8_t>(0));
}

Node integer_node(const Node& from, const char* op_type) {
  Node q;
  q.name = from.name;
  q.op_type = op_type;
  q.domain = kEngineDomain;
  q.opset = 1;
  return q;
}

void set_clamp(Node& q, const QOut& o) {
  q.attrs.set("requant", std::string("float"));
  q.attrs.set("out_min", int64_t(o.lo));
  q.attrs.set("out_max", int64_t(o.hi));
}

void mark_output(Ctx& c, const QOut& o) {
  QuantParams& qp = c.g.value(o.value).quant;
  qp.scale = {o.s};
  qp.zero_point = {o.z};
  qp.axis = -1;
  qp.bits = o.bits;
}

void push_input(Ctx& c, Node& q, const QIn& x) {
  q.inputs.push_back(x.q);
  q.inputs.push_back(x.scale);
  q.inputs.push_back(zp_or_zero(c, x.zp, x.t, c.g.value(x.q).name));
}

void push_output_params(Ctx& c, Node& q, const QOut& o) {
  q.inputs.push_back(o.scale);
  q.inputs.push_back(zp_or_zero(c, o.zp, o.t, c.g.value(o.value).name));
}

// Records the weights' quantization on their value (bit width from the range of the values:
// QAT models store 2..7-bit weights in int8 initializers).
void mark_weight(Ctx& c, const QW& w, int axis) {
  const Tensor& t = *c.constant(w.w);
  QuantParams& qp = c.g.value(w.w).quant;
  qp.scale = w.s;
  qp.zero_point.assign(w.s.size(), 0);
  if (w.zp >= 0)
    for (size_t i = 0; i < w.s.size(); ++i)
      qp.zero_point[i] = int32_t(int_at(*c.constant(w.zp), int64_t(i)));
  qp.axis = w.s.size() == 1 ? -1 : axis;
  qp.bits = 8;
  bool symmetric = true;
  for (int32_t z : qp.zero_point) symmetric = symmetric && z == 0;
  if (t.dtype() == DType::I8 && symmetric) {
    int64_t lo = 0, hi = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      lo = std::min(lo, int_at(t, i));
      hi = std::max(hi, int_at(t, i));
    }
    for (int b = 2; b <= 8; ++b)
      if (lo >= -(1 << (b - 1)) && hi <= (1 << (b - 1)) - 1) {
        qp.bits = b;
        break;
      }
  }
}

std::vector<int> pattern_of(int op, const QOut& o) {
  std::vector<int> p{op};
  p.insert(p.end(), o.nodes.begin(), o.nodes.end());
  return p;
}

// Writes q in place of the matched op and its output pattern; true (the graph changed).
bool finish(Ctx& c, int op, const QOut& o, Node q) {
  q.outputs = {o.value};
  mark_output(c, o);
  place_fused(c.g, c.idx, pattern_of(op, o), std::move(q));
  return true;
}

// Conv / Gemm / MatMul: x DQ'd per tensor, constant DQ weights, a bias, a Q after.
struct MatchCompute {
  QIn x;
  QW w;
  int w_axis = 0;
  std::optional<Tensor> bias;
  QOut out;
};

std::optional<MatchCompute> select_compute(const Ctx& c, int i) {
  const Node& n = c.node(i);
  MatchCompute m;
  const bool conv = is_op(n, "Conv"), gemm = is_op(n, "Gemm"), matmul = is_op(n, "MatMul");
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return std::nullopt;
  if (gemm) {
    if (n.attrs.get_int("transA", 0) != 0 || n.attrs.get_float("alpha", 1.0f) != 1.0f ||
        n.attrs.get_float("beta", 1.0f) != 1.0f)
      return std::nullopt;
    m.w_axis = n.attrs.get_int("transB", 0) ? 0 : 1;
  } else if (matmul) {
    m.w_axis = 1;
    if (!c.shapes || c.shapes->rank(n.inputs[0]) != 2) return std::nullopt;
  } else if (!conv) {
    return std::nullopt;
  }
  auto x = dq_input(c, n.inputs[0]);
  if (!x || c.g.is_constant(x->q)) return std::nullopt;
  auto w = dq_weight(c, n.inputs[1], m.w_axis);
  if (!w) return std::nullopt;
  const Tensor& wt = *c.constant(w->w);
  if ((gemm || matmul) && wt.rank() != 2) return std::nullopt;
  if (conv && wt.rank() < 3) return std::nullopt;
  const int64_t channels = wt.dim(m.w_axis);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    if (matmul) return std::nullopt;
    m.bias = bias_int32(c, n.inputs[2], x->s, *w, channels);
    if (!m.bias) return std::nullopt;
  }
  auto out = q_output(c, n.outputs[0], true);
  if (!out) return std::nullopt;
  m.x = *x;
  m.w = *w;
  m.out = *out;
  return m;
}

bool act_compute(Ctx& c, int i, const MatchCompute& m) {
  const Node& n = c.node(i);
  const bool conv = is_op(n, "Conv");
  Node q = integer_node(n, conv ? "QConv" : "QGemm");
  if (conv) {
    q.attrs = n.attrs;
  } else {
    q.attrs.set("transB", int64_t(is_op(n, "Gemm") ? n.attrs.get_int("transB", 0) : 0));
  }
  push_input(c, q, m.x);
  q.inputs.push_back(m.w.w);
  q.inputs.push_back(m.w.scale);
  q.inputs.push_back(m.w.zp);
  push_output_params(c, q, m.out);
  q.inputs.push_back(m.bias ? add_constant(c.g, n.name + "_bias_int32", *m.bias) : kNoValue);
  set_clamp(q, m.out);
  mark_weight(c, m.w, m.w_axis);
  return finish(c, i, m.out, std::move(q));
}

// Add / Mul / Concat / AveragePool / GlobalAveragePool: every data input DQ'd per tensor.
struct MatchMulti {
  std::vector<QIn> in;
  QOut out;
};

std::optional<MatchMulti> select_multi(const Ctx& c, int i) {
  const Node& n = c.node(i);
  const bool pool = is_op(n, "AveragePool") || is_op(n, "GlobalAveragePool");
  if (n.outputs.size() != 1 || n.inputs.empty()) return std::nullopt;
  if ((is_op(n, "Add") || is_op(n, "Mul")) && n.inputs.size() != 2) return std::nullopt;
  if (pool && n.inputs.size() != 1) return std::nullopt;
  MatchMulti m;
  for (int v : n.inputs) {
    auto x = v >= 0 ? dq_input(c, v) : std::nullopt;
    if (!x) return std::nullopt;
    m.in.push_back(*x);
  }
  auto out = q_output(c, n.outputs[0], !pool);
  if (!out) return std::nullopt;
  m.out = *out;
  return m;
}

bool act_multi(Ctx& c, int i, const MatchMulti& m) {
  const Node& n = c.node(i);
  Node q;
  if (is_op(n, "Concat")) {
    q = integer_node(n, "QConcat");
    q.attrs.set("axis", n.attrs.get_int("axis"));
    push_output_params(c, q, m.out);
    for (const QIn& x : m.in) push_input(c, q, x);
  } else {
    const bool pool = is_op(n, "AveragePool") || is_op(n, "GlobalAveragePool");
    q = integer_node(n, is_op(n, "Add")           ? "QAdd"
                        : is_op(n, "Mul")         ? "QMul"
                        : is_op(n, "AveragePool") ? "QAveragePool"
                                                  : "QGlobalAveragePool");
    if (pool) q.attrs = n.attrs;
    for (const QIn& x : m.in) push_input(c, q, x);
    push_output_params(c, q, m.out);
  }
  set_clamp(q, m.out);
  return finish(c, i, m.out, std::move(q));
}

// Ops that move integers without changing them: DQ -> op -> Q with the DQ's parameters.
struct MatchMove {
  QIn x;
  QOut out;
};

std::optional<MatchMove> select_move(const Ctx& c, int i) {
  const Node& n = c.node(i);
  if (n.outputs.size() != 1 || n.inputs.empty()) return std::nullopt;
  auto x = dq_input(c, n.inputs[0]);
  if (!x) return std::nullopt;
  auto out = q_output(c, n.outputs[0], false);
  if (!out || out->s != x->s || out->z != x->z || out->t != x->t) return std::nullopt;
  return MatchMove{*x, *out};
}

// Writes `op` (reading the integers) and, when Q's range is narrower than the container, an
// integer Clip after it.
bool act_move(Ctx& c, int i, const MatchMove& m) {
  Node op = c.node(i);
  op.inputs[0] = m.x.q;
  mark_output(c, m.out);
  const bool clamp = m.out.lo > container_min(m.out.t) || m.out.hi < container_max(m.out.t);
  if (!clamp) {
    op.outputs = {m.out.value};
    place_fused(c.g, c.idx, pattern_of(i, m.out), std::move(op));
    return true;
  }
  const int mid = c.g.add_value(c.g.value(m.out.value).name + "_unclipped");
  op.outputs = {mid};
  Node k;
  k.name = op.name + "_clip";
  k.op_type = "Clip";
  k.opset = 13;
  auto bound = [&](int32_t b) {
    return add_constant(c.g, k.name + (b == m.out.lo ? "_min" : "_max"),
                        m.out.t == DType::U8 ? Tensor::scalar<uint8_t>(uint8_t(b))
                                             : Tensor::scalar<int8_t>(int8_t(b)));
  };
  k.inputs = {mid, bound(m.out.lo), bound(m.out.hi)};
  k.outputs = {m.out.value};
  const std::vector<int> pattern = pattern_of(i, m.out);
  c.g.nodes[size_t(i)] = std::move(op);
  for (size_t j = 1; j + 1 < pattern.size(); ++j) c.idx.kill(pattern[j]);
  c.g.nodes[size_t(pattern.back())] = std::move(k);
  return true;
}

// Unary elementwise ops and a Q reading a DQ: a 256-entry table.
struct MatchLut {
  QIn x;
  QOut out;
};

const std::set<std::string>& lut_ops() {
  static const std::set<std::string> ops = {
      "Sigmoid",     "Tanh",           "Relu",       "LeakyRelu", "Clip",
      "HardSigmoid", "HardSwish",      "Elu",        "Selu",      "Celu",
      "Softplus",    "Softsign",       "Exp",        "Log",       "Neg",
      "Abs",         "Sqrt",           "Reciprocal", "Erf",       "Gelu",
      "Mish",        "ThresholdedRelu"};
  return ops;
}

std::optional<MatchLut> select_lut(const Ctx& c, int i) {
  const Node& n = c.node(i);
  if (n.outputs.size() != 1 || n.inputs.empty()) return std::nullopt;
  auto x = dq_input(c, n.inputs[0]);
  if (!x) return std::nullopt;
  if (is_op(n, "QuantizeLinear")) {  // Q(DQ(x)): a requantization
    auto out = q_tail(c, i, QOut{});
    if (!out) return std::nullopt;
    return MatchLut{*x, *out};
  }
  for (size_t k = 1; k < n.inputs.size(); ++k)
    if (n.inputs[k] >= 0 && !c.g.is_constant(n.inputs[k])) return std::nullopt;
  auto out = q_output(c, n.outputs[0], false);
  if (!out) return std::nullopt;
  return MatchLut{*x, *out};
}

bool act_lut(Ctx& c, int i, const MatchLut& m) {
  const Node& n = c.node(i);
  const bool requant = is_op(n, "QuantizeLinear");
  const int32_t qmin = container_min(m.out.t), qmax = container_max(m.out.t);
  const int32_t xmin = container_min(m.x.t);
  // Q(DQ(x)) with the same parameters and no narrower clamp: x itself.
  if (requant && m.out.s == m.x.s && m.out.z == m.x.z && m.out.t == m.x.t && m.out.lo == qmin &&
      m.out.hi == qmax && !c.idx.is_graph_output(m.out.value)) {
    c.g.replace_uses(m.out.value, m.x.q);
    for (int k : m.out.nodes) c.idx.kill(k);
    return true;
  }
  Tensor xf(DType::F32, {256});
  for (int32_t k = 0; k < 256; ++k)
    xf.data<float>()[k] = quant::dequantize_value(xmin + k, m.x.s, m.x.z);
  Tensor yf = xf;
  if (!requant) {
    std::vector<const Tensor*> in{&xf};
    for (size_t k = 1; k < n.inputs.size(); ++k)
      in.push_back(n.inputs[k] >= 0 ? c.constant(n.inputs[k]) : nullptr);
    try {
      std::vector<Tensor> r = eval_node(c.reg, n, in);
      if (r.size() != 1 || r[0].dtype() != DType::F32 || r[0].numel() != 256) return false;
      yf = std::move(r[0]);
    } catch (const Error&) {
      return false;  // the float op stays
    }
  }
  Tensor table(m.out.t, {256});
  for (int64_t k = 0; k < 256; ++k) {
    const int32_t q =
        std::clamp(quant::quantize_value(yf.data<float>()[k], m.out.s, m.out.z, qmin, qmax),
                   m.out.lo, m.out.hi);
    if (m.out.t == DType::U8)
      table.data<uint8_t>()[k] = uint8_t(q);
    else
      table.data<int8_t>()[k] = int8_t(q);
  }
  Node q = integer_node(n, "QLut");
  if (requant) q.name = n.name + "_requantize";
  q.inputs = {m.x.q, add_constant(c.g, n.name + "_table", std::move(table))};
  if (requant) {
    q.outputs = {m.out.value};
    mark_output(c, m.out);
    place_fused(c.g, c.idx, m.out.nodes, std::move(q));
  } else {
    finish(c, i, m.out, std::move(q));
  }
  return true;
}

// ---------------------------------------------------------------- rules by op type

struct Rule {
  std::set<std::string> ops;
  std::function<bool(Ctx&, int)> apply;  // select, then act; false if nothing changed
};

template <class Select, class Act>
std::function<bool(Ctx&, int)> rule(Select select, Act act) {
  return [select, act](Ctx& c, int i) {
    auto m = select(c, i);
    return m && act(c, i, *m);
  };
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = [] {
    std::vector<Rule> v;
    v.push_back({{"Conv", "Gemm", "MatMul"}, rule(select_compute, act_compute)});
    v.push_back({{"Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool"},
                 rule(select_multi, act_multi)});
    v.push_back(
        {{"MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"},
         rule(select_move, act_move)});
    std::set<std::string> lut = lut_ops();
    lut.insert("QuantizeLinear");
    v.push_back({lut, rule(select_lut, act_lut)});
    return v;
  }();
  return r;
}

// Constant nodes become constants first, so weights given as Constant nodes match too.
void fold_constant_nodes(Graph& g, const OpRegistry& reg) {
  std::vector<bool> remove(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!is_op(n, "Constant") || !n.inputs.empty() || n.outputs.size() != 1) continue;
    std::vector<Tensor> out = eval_node(reg, n, {});
    Value& v = g.value(n.outputs[0]);
    v.dtype = out[0].dtype();
    v.shape = out[0].shape();
    v.has_shape = true;
    v.constant = std::move(out[0]);
    remove[i] = true;
  }
  remove_nodes(g, remove);
}

bool has_qdq(const Graph& g) {
  for (const Node& n : g.nodes)
    if (is_op(n, "DequantizeLinear")) return true;
  return false;
}

class ImportQdqPass : public Pass {
 public:
  std::string name() const override { return "import-qdq"; }
  std::string description() const override {
    return "QDQ graphs (DequantizeLinear -> op -> QuantizeLinear) to integer ops";
  }
  bool run(Graph& g, const PassContext& ctx) const override {
    if (!has_qdq(g)) return false;
    fold_constant_nodes(g, ctx.registry);
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    const bool changed = rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      Ctx c{g, ctx.registry, idx, shapes};
      const Node& n = g.nodes[size_t(i)];
      if (!n.domain.empty()) return false;
      for (const Rule& r : rules())
        if (r.ops.count(n.op_type) && r.apply(c, i)) return true;
      return false;
    });
    if (changed) make_remove_dead_pass()->run(g, ctx);
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_import_qdq_pass() {
  return std::make_unique<ImportQdqPass>();
}

}  // namespace engine
