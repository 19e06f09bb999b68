// Integer IR -> standard ONNX QDQ (opset 13), the inverse of the import-qdq pass:
//   QConv / QGemm  -> DQ(x), DQ(w) (per output channel on axis 0, or axis 1 for Gemm with
//                     transB = 0), DQ(bias int32, scale x_s * w_s[oc]) -> Conv / Gemm
//                     [-> Add(DQ(sum)) for a fused residual] -> clamp -> Q
//   QAdd / QMul / QConcat / QAveragePool / QGlobalAveragePool -> DQ inputs -> float op -> clamp ->
//   Q QLut           -> Gather(table, Cast(x) [+ 128 for int8]) (a lookup on the integers)
//   FusedConv / FusedGemm (layers left in float) -> Conv / Gemm [+ Add] + their activation
// The clamp (attrs out_min / out_max): nothing when it is the container's range; Relu before Q
// when it is [zero point, max] (ONNX Runtime fuses Conv + Relu); else an integer Clip after Q (as
// QAT exports write 2-7-bit activations). Every other node (QuantizeLinear, DequantizeLinear,
// MaxPool / Reshape / Clip on integers, float ops) is copied. A value read by several float ops
// gets one DequantizeLinear. The requantization mode is not part of QDQ: other runtimes use float
// requantization (the engine's "float" mode).
#include "frontend/qdq_export.h"

#include <map>
#include <string>

#include "core/error.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

bool is_q8(DType t) {
  return t == DType::U8 || t == DType::I8;
}

class Exporter {
 public:
  explicit Exporter(const Graph& g) : g_(g) {
    out_ = g;
    out_.nodes.clear();
    out_.opset = std::max(g.opset, 13);
  }

  Graph run() {
    for (const Node& n : g_.nodes) {
      if (n.domain == "engine")
        engine_node(n);
      else
        out_.nodes.push_back(n);
    }
    out_.reindex();
    return std::move(out_);
  }

 private:
  const Tensor& constant(const Node& n, size_t i) const {
    ENGINE_CHECK(i < n.inputs.size() && n.inputs[i] >= 0 && g_.is_constant(n.inputs[i]), n.label(),
                 ": input ", i, " must be a constant to be exported as QDQ");
    return *g_.value(n.inputs[i]).constant;
  }
  DType zp_type(const Node& n, size_t i) const { return constant(n, i).dtype(); }
  int32_t zp_of(const Node& n, size_t i) const {
    const Tensor& t = constant(n, i);
    return t.dtype() == DType::U8 ? t.data<uint8_t>()[0] : t.data<int8_t>()[0];
  }
  float scale_of(const Node& n, size_t i) const { return constant(n, i).data<float>()[0]; }

  int new_value(const std::string& base) { return fusion::add_fresh_value(out_, base); }
  int new_constant(const std::string& base, Tensor t) {
    return fusion::add_constant(out_, base, std::move(t));
  }
  Node make(const std::string& name, const std::string& op, std::vector<int> in,
            std::vector<int> out) {
    Node n;
    n.name = name;
    n.op_type = op;
    n.opset = 13;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
  }

  // The float value of integer value v (scale / zero point inputs of node n at slots s, z); one
  // DequantizeLinear per value.
  int dq(const Node& n, size_t v, size_t s, size_t z) {
    const int x = n.inputs[v];
    auto it = dq_.find(x);
    if (it != dq_.end()) return it->second;
    const int y = new_value(g_.value(x).name + "_dq");
    std::vector<int> in{x, n.inputs[s]};
    if (z < n.inputs.size() && n.inputs[z] >= 0) in.push_back(n.inputs[z]);
    out_.nodes.push_back(make(g_.value(x).name + "_DequantizeLinear", "DequantizeLinear", in, {y}));
    dq_[x] = y;
    return y;
  }

  // Constant weights: DequantizeLinear with axis when the scale has one value per channel.
  int dq_weight(const Node& n, size_t w, size_t s, size_t z, int axis) {
    const int y = new_value(g_.value(n.inputs[w]).name + "_dq");
    std::vector<int> in{n.inputs[w], n.inputs[s]};
    if (z < n.inputs.size() && n.inputs[z] >= 0) in.push_back(n.inputs[z]);
    Node d = make(n.name + "_weight_DequantizeLinear", "DequantizeLinear", in, {y});
    if (constant(n, s).numel() > 1) d.attrs.set("axis", int64_t(axis));
    out_.nodes.push_back(std::move(d));
    return y;
  }

  // The int32 bias in the accumulator's scale x_s * w_s[oc].
  int dq_bias(const Node& n, size_t b, float xs, size_t ws) {
    const Tensor& w = constant(n, ws);
    const int64_t channels = constant(n, b).numel();
    Tensor s(DType::F32, {channels});
    for (int64_t c = 0; c < channels; ++c)
      s.data<float>()[c] = xs * w.data<float>()[w.numel() == 1 ? 0 : c];
    const int sv = new_constant(n.name + "_bias_scale", std::move(s));
    const int y = new_value(g_.value(n.inputs[b]).name + "_dq");
    Node d = make(n.name + "_bias_DequantizeLinear", "DequantizeLinear", {n.inputs[b], sv}, {y});
    d.attrs.set("axis", int64_t(0));
    out_.nodes.push_back(std::move(d));
    return y;
  }

  // Float result f of node n -> its integer output (scale / zp at slots s, z), with the clamp.
  void quantize_output(const Node& n, int f, size_t s, size_t z) {
    const DType t = zp_type(n, z);
    const int32_t qmin = t == DType::U8 ? 0 : -128, qmax = t == DType::U8 ? 255 : 127;
    const int32_t lo = int32_t(n.attrs.get_int("out_min", qmin));
    const int32_t hi = int32_t(n.attrs.get_int("out_max", qmax));
    const int y = n.outputs[0];
    if (lo == zp_of(n, z) && hi == qmax && lo > qmin) {
      const int r = new_value(g_.value(y).name + "_relu");
      out_.nodes.push_back(make(n.name + "_Relu", "Relu", {f}, {r}));
      f = r;
    }
    const bool clip = (lo > qmin && !(lo == zp_of(n, z) && hi == qmax)) || hi < qmax;
    const int q = clip ? new_value(g_.value(y).name + "_unclipped") : y;
    out_.nodes.push_back(
        make(n.name + "_QuantizeLinear", "QuantizeLinear", {f, n.inputs[s], n.inputs[z]}, {q}));
    if (!clip) return;
    auto bound = [&](int32_t v) {
      return new_constant(
          n.name + (v == lo ? "_min" : "_max"),
          t == DType::U8 ? Tensor::scalar<uint8_t>(uint8_t(v)) : Tensor::scalar<int8_t>(int8_t(v)));
    };
    out_.nodes.push_back(make(n.name + "_Clip", "Clip", {q, bound(lo), bound(hi)}, {y}));
  }

  // Copy of the geometry attributes (everything but the engine's requantization settings).
  static Attributes op_attrs(const Node& n) {
    Attributes a;
    for (const auto& [k, v] : n.attrs.all())
      if (k != "requant" && k != "scale_bits" && k != "out_min" && k != "out_max" &&
          k != "activation" && k != "act_alpha" && k != "act_beta")
        a.set(k, v);
    return a;
  }

  void engine_node(const Node& n) {
    const std::string& op = n.op_type;
    if (op == "QConv" || op == "QGemm") return compute(n);
    if (op == "QAdd" || op == "QMul") {
      const int a = dq(n, 0, 1, 2), b = dq(n, 3, 4, 5);
      const int f = new_value(g_.value(n.outputs[0]).name + "_float");
      out_.nodes.push_back(make(n.name, op == "QAdd" ? "Add" : "Mul", {a, b}, {f}));
      return quantize_output(n, f, 6, 7);
    }
    if (op == "QConcat") {
      std::vector<int> in;
      for (size_t i = 2; i + 2 < n.inputs.size(); i += 3) in.push_back(dq(n, i, i + 1, i + 2));
      const int f = new_value(g_.value(n.outputs[0]).name + "_float");
      Node c = make(n.name, "Concat", in, {f});
      c.attrs.set("axis", n.attrs.get_int("axis"));
      out_.nodes.push_back(std::move(c));
      return quantize_output(n, f, 0, 1);
    }
    if (op == "QAveragePool" || op == "QGlobalAveragePool") {
      const int x = dq(n, 0, 1, 2);
      const int f = new_value(g_.value(n.outputs[0]).name + "_float");
      Node p = make(n.name, op.substr(1), {x}, {f});
      p.attrs = op_attrs(n);
      out_.nodes.push_back(std::move(p));
      return quantize_output(n, f, 3, 4);
    }
    if (op == "QLut") return lut(n);
    if (op == "FusedConv" || op == "FusedGemm") return unfuse(n);
    fail(n.label(), ": engine op with no QDQ form; it cannot be exported");
  }

  void compute(const Node& n) {
    const bool conv = n.op_type == "QConv";
    const int x = dq(n, 0, 1, 2);
    const int axis = conv ? 0 : (n.attrs.get_int("transB", 0) ? 0 : 1);
    std::vector<int> in{x, dq_weight(n, 3, 4, 5, axis)};
    if (n.inputs.size() > 8 && n.inputs[8] >= 0) in.push_back(dq_bias(n, 8, scale_of(n, 1), 4));
    int f = new_value(g_.value(n.outputs[0]).name + "_float");
    Node c = make(n.name, conv ? "Conv" : "Gemm", in, {f});
    c.attrs = op_attrs(n);
    out_.nodes.push_back(std::move(c));
    if (conv && n.inputs.size() > 9 && n.inputs[9] >= 0) {  // fused residual
      const int s = dq(n, 9, 10, 11);
      const int sum = new_value(g_.value(n.outputs[0]).name + "_sum");
      out_.nodes.push_back(make(n.name + "_Add", "Add", {f, s}, {sum}));
      f = sum;
    }
    quantize_output(n, f, 6, 7);
  }

  void lut(const Node& n) {
    const int x = n.inputs[0];
    const DType t = g_.value(x).dtype;
    ENGINE_CHECK(t == DType::Undefined || is_q8(t), n.label(), ": input must be uint8 or int8");
    const int i32 = new_value(g_.value(x).name + "_index");
    Node cast = make(n.name + "_Cast", "Cast", {x}, {i32});
    cast.attrs.set("to", int64_t(6));  // INT32
    out_.nodes.push_back(std::move(cast));
    int index = i32;
    if (t == DType::I8) {  // table[x + 128]
      index = new_value(g_.value(x).name + "_index128");
      out_.nodes.push_back(make(n.name + "_Offset", "Add",
                                {i32, new_constant(n.name + "_128", Tensor::scalar<int32_t>(128))},
                                {index}));
    }
    Node gather = make(n.name, "Gather", {n.inputs[1], index}, {n.outputs[0]});
    gather.attrs.set("axis", int64_t(0));
    out_.nodes.push_back(std::move(gather));
  }

  void unfuse(const Node& n) {
    const bool conv = n.op_type == "FusedConv";
    std::vector<int> in(n.inputs.begin(), n.inputs.begin() + std::min<size_t>(n.inputs.size(), 3));
    while (!in.empty() && in.back() < 0) in.pop_back();
    const std::string act = n.attrs.get_string("activation", "");
    const bool sum = conv && n.inputs.size() > 3 && n.inputs[3] >= 0;
    int f = (act.empty() && !sum) ? n.outputs[0] : new_value(g_.value(n.outputs[0]).name + "_pre");
    Node c = make(n.name, conv ? "Conv" : "Gemm", in, {f});
    c.attrs = op_attrs(n);
    out_.nodes.push_back(std::move(c));
    if (sum) {
      const int s = act.empty() ? n.outputs[0] : new_value(g_.value(n.outputs[0]).name + "_sum");
      out_.nodes.push_back(make(n.name + "_Add", "Add", {f, n.inputs[3]}, {s}));
      f = s;
    }
    if (act.empty()) return;
    Node a = make(n.name + "_" + act, act, {f}, {n.outputs[0]});
    const bool alpha = n.attrs.has("act_alpha"), beta = n.attrs.has("act_beta");
    if (act == "Clip") {
      if (alpha)
        a.inputs.push_back(
            new_constant(n.name + "_min", Tensor::scalar<float>(n.attrs.get_float("act_alpha"))));
      else if (beta)
        a.inputs.push_back(kNoValue);
      if (beta)
        a.inputs.push_back(
            new_constant(n.name + "_max", Tensor::scalar<float>(n.attrs.get_float("act_beta"))));
    } else if (act == "LeakyRelu" || act == "HardSigmoid") {
      if (alpha) a.attrs.set("alpha", n.attrs.get_float("act_alpha"));
      if (beta) a.attrs.set("beta", n.attrs.get_float("act_beta"));
    } else {
      ENGINE_CHECK(act == "Relu" || act == "Sigmoid" || act == "HardSwish", n.label(),
                   ": fused activation ", act, " has no QDQ export");
    }
    out_.nodes.push_back(std::move(a));
  }

  const Graph& g_;
  Graph out_;
  std::map<int, int> dq_;  // integer value -> its DequantizeLinear output
};

}  // namespace

Graph to_qdq(const Graph& g) {
  return Exporter(g).run();
}

}  // namespace engine
