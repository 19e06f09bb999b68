// The quantization pass (see quantize.h). One walk over the nodes in topological order:
//   - a node with an integer kernel whose inputs/outputs have calibration statistics becomes its
//     integer form; its float inputs are quantized first (QuantizeLinear, shared per value), and
//     its quantized output replaces the float one;
//   - pass-through ops (MaxPool, Reshape, ...) whose data input is already quantized run on the
//     integers with the same scale;
//   - any other node runs in FP32; an input that only exists quantized is dequantized first
//     (DequantizeLinear writing the original value, so names of graph outputs never change).

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "quant/fixedpoint.h"
#include "quant/quantize.h"

namespace engine::quant {
namespace {

using nlohmann::json;

struct ActQ {
  ScaleZp p;
  QTarget t;
};

// Stores a quantized value into a uint8 or int8 tensor.
void store_q(Tensor& t, int64_t i, int32_t v) {
  if (t.dtype() == DType::U8)
    t.data<uint8_t>()[i] = uint8_t(v);
  else
    t.data<int8_t>()[i] = int8_t(v);
}

bool is_conv(const Node& n) {
  return (n.op_type == "Conv" && n.domain.empty()) ||
         (n.op_type == "FusedConv" && n.domain == "engine");
}
bool is_gemm(const Node& n) {
  return (n.op_type == "Gemm" && n.domain.empty()) ||
         (n.op_type == "FusedGemm" && n.domain == "engine");
}
bool is_compute(const Node& n) {
  return is_conv(n) || is_gemm(n) || (n.op_type == "MatMul" && n.domain.empty());
}
// Ops that move or select integers without changing their scale.
bool is_pass_through(const Node& n) {
  static const std::set<std::string> ops = {"MaxPool", "Reshape",   "Flatten", "Transpose",
                                            "Squeeze", "Unsqueeze", "Relu",    "Clip"};
  if (!n.domain.empty() || !ops.count(n.op_type)) return false;
  if (n.op_type == "MaxPool") return n.outputs.size() == 1;
  return true;
}

class Quantizer {
 public:
  Quantizer(const Graph& g, const StatsMap& stats, const QuantConfig& cfg,
            const std::map<std::string, Range>& overrides)
      : src_(g), stats_(stats), cfg_(cfg), overrides_(overrides) {}

  QuantizeResult run();

 private:
  // Naming and constants.
  std::string fresh(const std::string& base);
  int add_const(const std::string& base, Tensor t);
  int add_value_like(int v, const std::string& suffix, DType dtype);
  // Scale / zero-point constants are shared by every node that reads the same value.
  int scale_const(const std::string& base, float s);
  int zp_const(const std::string& base, const ActQ& a);
  // A float constant (e.g. an Add operand) quantized with parameters `a`.
  int quantized_constant(int v, const ActQ& a);

  // Activation parameters of a float value (nullopt: no statistics).
  std::optional<ActQ> act_params(int v, const LayerSettings& s);
  int ensure_q(int v, const LayerSettings& s);
  int ensure_f(int v);
  void emit(Node n) { nodes_.push_back(std::move(n)); }

  // Integer forms; return false (with a reason) to keep the node in FP32.
  bool can_quantize(const Node& n, const LayerSettings& s, std::string& why);
  void quantize_conv(const Node& n, const LayerSettings& s);
  void quantize_gemm(const Node& n, const LayerSettings& s);
  void quantize_add(const Node& n, const LayerSettings& s);
  void quantize_concat(const Node& n, const LayerSettings& s);
  void quantize_avgpool(const Node& n, const LayerSettings& s);
  void quantize_pass_through(const Node& n);

  // Quantized weights: int8/uint8 tensor + scales + zero points along `axis`.
  struct QWeight {
    Tensor q, scale, zp;
    std::vector<float> scales;
  };
  QWeight quantize_weight(const Tensor& w, int axis, const LayerSettings& s, bool per_channel);
  // The int32 bias (scale x_s * w_s[oc]) of conv / gemm node n: its float bias, minus the
  // expected error of the quantized weights when bias correction is on (a bias is created then
  // if n has none). kNoValue when there is no bias and no correction.
  int quantized_bias(const Node& n, int x, const ActQ& ax, const Tensor& w, const QWeight& qw,
                     int axis);
  void set_requant_attrs(Node& q, const ActQ& out, int32_t lo, int32_t hi);
  // Output clamp of a fused activation, in the quantized domain.
  void activation_bounds(const Node& n, const ActQ& out, int32_t& lo, int32_t& hi, bool& ok);

  const Graph& src_;
  const StatsMap& stats_;
  const QuantConfig& cfg_;
  const std::map<std::string, Range>& overrides_;
  Graph out_;
  std::vector<Node> nodes_;
  std::vector<int> qval_;          // float value id -> quantized value id (-1: none)
  std::vector<char> float_ready_;  // the float value is computed (or an input / constant)
  std::map<int, ActQ> act_;        // chosen parameters per float value
  json chosen_ = json::object();
  std::map<std::pair<std::string, double>, int> shared_;  // (name, value) -> constant id
  int nq_ = 0, ndq_ = 0;
};

std::string Quantizer::fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; out_.find_value(name) >= 0; ++i) name = str_cat(base, "_", i);
  return name;
}

int Quantizer::add_const(const std::string& base, Tensor t) {
  const int id = out_.add_value(fresh(base));
  Value& v = out_.value(id);
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.has_shape = true;
  v.constant = std::move(t);
  qval_.push_back(-1);
  float_ready_.push_back(1);
  return id;
}

int Quantizer::add_value_like(int v, const std::string& suffix, DType dtype) {
  const Value src = out_.value(v);
  const int id = out_.add_value(fresh(src.name + suffix));
  Value& nv = out_.value(id);
  nv.dtype = dtype;
  nv.shape = src.shape;
  nv.has_shape = src.has_shape;
  qval_.push_back(-1);
  float_ready_.push_back(0);
  return id;
}

int Quantizer::scale_const(const std::string& base, float s) {
  const auto key = std::make_pair(base, double(s));
  auto it = shared_.find(key);
  if (it != shared_.end()) return it->second;
  return shared_[key] = add_const(base, Tensor::scalar(s));
}

int Quantizer::zp_const(const std::string& base, const ActQ& a) {
  const auto key =
      std::make_pair(base, double(a.p.zero_point) + (a.t.dtype() == DType::U8 ? 0.5 : 0));
  auto it = shared_.find(key);
  if (it != shared_.end()) return it->second;
  Tensor t(a.t.dtype(), Dims{});
  store_q(t, 0, a.p.zero_point);
  return shared_[key] = add_const(base, std::move(t));
}

int Quantizer::quantized_constant(int v, const ActQ& a) {
  const Tensor& t = *src_.value(v).constant;
  Tensor qt(a.t.dtype(), t.shape());
  for (int64_t i = 0; i < t.numel(); ++i)
    store_q(qt, i,
            quantize_value(t.data<float>()[i], a.p.scale, a.p.zero_point, a.t.qmin(), a.t.qmax()));
  return add_const(src_.value(v).name + "_quantized", std::move(qt));
}

std::optional<ActQ> Quantizer::act_params(int v, const LayerSettings& s) {
  auto it = act_.find(v);
  if (it != act_.end()) return it->second;
  const std::string& name = src_.value(v).name;
  auto st = stats_.find(name);
  if (st == stats_.end()) return std::nullopt;
  ActQ a;
  a.t = QTarget{s.bits_a, s.mode_a};
  auto ov = overrides_.find(name);
  const Range r = ov != overrides_.end()
                      ? ov->second
                      : compute_range(s.observer, st->second, a.t, cfg_.observer_options);
  a.p = choose_qparams(r, a.t);
  act_[v] = a;
  json c;
  c["observer"] = ov != overrides_.end() ? std::string("override_range") : s.observer;
  c["data_min"] = st->second.min();
  c["data_max"] = st->second.max();
  c["range"] = {r.lo, r.hi};
  c["bits"] = a.t.bits;
  c["mode"] = qmode_name(a.t.mode);
  c["scale"] = a.p.scale;
  c["zero_point"] = a.p.zero_point;
  chosen_[name] = c;
  return a;
}

int Quantizer::ensure_q(int v, const LayerSettings& s) {
  if (qval_[size_t(v)] >= 0) return qval_[size_t(v)];
  const std::optional<ActQ> a = act_params(v, s);
  ENGINE_CHECK(a.has_value(), "internal: no statistics for '", src_.value(v).name, "'");
  const std::string& name = src_.value(v).name;
  const int q = add_value_like(v, "_quantized", a->t.dtype());
  Node n;
  n.name = fresh(name + "_QuantizeLinear");
  n.op_type = "QuantizeLinear";
  n.opset = 13;
  n.inputs = {ensure_f(v), scale_const(name + "_scale", a->p.scale), zp_const(name + "_zp", *a)};
  n.outputs = {q};
  emit(std::move(n));
  ++nq_;
  int result = q;
  // Narrow bit widths: QuantizeLinear saturates to the 8-bit container; clamp to the range.
  if (a->t.qmin() != (a->t.dtype() == DType::U8 ? 0 : -128) ||
      a->t.qmax() != (a->t.dtype() == DType::U8 ? 255 : 127)) {
    result = add_value_like(v, "_quantized_clip", a->t.dtype());
    Node c;
    c.name = fresh(name + "_Clip");
    c.op_type = "Clip";
    c.opset = 13;
    ActQ lo = *a, hi = *a;
    lo.p.zero_point = a->t.qmin();
    hi.p.zero_point = a->t.qmax();
    c.inputs = {q, zp_const(name + "_qmin", lo), zp_const(name + "_qmax", hi)};
    c.outputs = {result};
    emit(std::move(c));
  }
  Value& qv = out_.value(result);
  qv.quant.scale = {a->p.scale};
  qv.quant.zero_point = {a->p.zero_point};
  qv.quant.bits = a->t.bits;
  qval_[size_t(v)] = result;
  return result;
}

int Quantizer::ensure_f(int v) {
  if (float_ready_[size_t(v)]) return v;
  const int q = qval_[size_t(v)];
  ENGINE_CHECK(q >= 0, "internal: value '", src_.value(v).name, "' is never computed");
  const ActQ& a = act_.at(v);
  const std::string& name = src_.value(v).name;
  Node n;
  n.name = fresh(name + "_DequantizeLinear");
  n.op_type = "DequantizeLinear";
  n.opset = 13;
  n.inputs = {q, scale_const(name + "_scale", a.p.scale), zp_const(name + "_zp", a)};
  n.outputs = {v};
  emit(std::move(n));
  ++ndq_;
  float_ready_[size_t(v)] = 1;
  return v;
}

Quantizer::QWeight Quantizer::quantize_weight(const Tensor& w, int axis, const LayerSettings& s,
                                              bool per_channel) {
  const QTarget t{s.bits_w - (cfg_.reduce_range ? 1 : 0), s.mode_w};
  const Dims& d = w.shape();
  const int64_t channels = per_channel ? d[size_t(axis)] : 1;
  int64_t inner = 1;  // elements after the axis
  for (size_t i = size_t(axis) + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t ch_dim = d[size_t(axis)];
  const float* x = w.data<float>();
  const int64_t n = w.numel();
  QWeight r;
  r.q = Tensor(t.dtype(), d);
  r.scales.resize(size_t(channels));
  std::vector<int32_t> zps(static_cast<size_t>(channels));
  auto channel_of = [&](int64_t i) { return per_channel ? (i / inner) % ch_dim : 0; };
  std::vector<std::vector<float>> data(static_cast<size_t>(channels));
  for (int64_t i = 0; i < n; ++i) data[size_t(channel_of(i))].push_back(x[i]);
  for (int64_t c = 0; c < channels; ++c) {
    TensorStats st(StatsOptions{});
    const auto& v = data[size_t(c)];
    st.observe(v.data(), int64_t(v.size()), 1);
    const Range rg = compute_range(s.weight_observer, st, t, cfg_.observer_options);
    const ScaleZp p = choose_qparams(rg, t);
    r.scales[size_t(c)] = p.scale;
    zps[size_t(c)] = p.zero_point;
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = size_t(channel_of(i));
    store_q(r.q, i, quantize_value(x[i], r.scales[c], zps[c], t.qmin(), t.qmax()));
  }
  const Dims sd = per_channel ? Dims{channels} : Dims{};
  r.scale = Tensor(DType::F32, sd);
  r.zp = Tensor(t.dtype(), sd);
  for (int64_t c = 0; c < channels; ++c) {
    r.scale.data<float>()[c] = r.scales[size_t(c)];
    store_q(r.zp, c, zps[size_t(c)]);
  }
  return r;
}

int Quantizer::quantized_bias(const Node& n, int x, const ActQ& ax, const Tensor& w,
                              const QWeight& qw, int axis) {
  const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
  const int64_t channels = w.dim(axis);
  std::vector<double> bias(static_cast<size_t>(channels), 0.0);
  if (has_bias) {
    const Tensor& b = *src_.value(n.inputs[2]).constant;
    for (int64_t c = 0; c < channels && c < b.numel(); ++c) bias[size_t(c)] = b.data<float>()[c];
  }
  std::vector<double> mean;
  if (cfg_.bias_correct) {
    auto st = stats_.find(src_.value(x).name);
    if (st != stats_.end()) mean = st->second.channel_mean();
  }
  // Bias correction: E[(W_q - W) x] = (W_q - W) E[x] per output channel, E[x] per input
  // channel from calibration. Conv weights [Cout, Cin/group, kh, kw]; Gemm [N, K] (axis 0) or
  // [K, N] (axis 1).
  const bool conv = w.rank() == 4;
  const int64_t group = conv ? n.attrs.get_int("group", 1) : 1;
  const int64_t cin_g = conv ? w.dim(1) : w.dim(1 - axis);
  const int64_t inner = conv ? w.dim(2) * w.dim(3) : 1;
  const bool correct = !mean.empty() && int64_t(mean.size()) == cin_g * group;
  if (!has_bias && !correct) return kNoValue;
  if (correct) {
    const float* pw = w.data<float>();
    const int64_t cout_g = channels / std::max<int64_t>(1, group);
    for (int64_t e = 0; e < w.numel(); ++e) {
      int64_t oc = 0, ic = 0;
      if (conv) {
        oc = e / (cin_g * inner);
        ic = (oc / cout_g) * cin_g + (e / inner) % cin_g;
      } else if (axis == 0) {
        oc = e / cin_g;
        ic = e % cin_g;
      } else {
        ic = e / channels;
        oc = e % channels;
      }
      const size_t k = qw.scales.size() == 1 ? 0 : size_t(oc);
      const double deq = (double(qw.q.get_as_int(e)) -
                          double(qw.zp.get_as_int(qw.zp.numel() > 1 ? int64_t(k) : 0))) *
                         double(qw.scales[k]);
      bias[size_t(oc)] -= (deq - double(pw[e])) * mean[size_t(ic)];
    }
  }
  Tensor bq(DType::I32, Dims{channels});
  for (int64_t oc = 0; oc < channels; ++oc) {
    const double sc =
        double(ax.p.scale) * double(qw.scales[qw.scales.size() == 1 ? 0 : size_t(oc)]);
    const double v = std::nearbyint(bias[size_t(oc)] / sc);
    bq.data<int32_t>()[oc] = int32_t(std::clamp(v, -2147483648.0, 2147483647.0));
  }
  return add_const(n.name + "_bias_quantized", std::move(bq));
}

void Quantizer::set_requant_attrs(Node& q, const ActQ& out, int32_t lo, int32_t hi) {
  q.attrs.set("requant", std::string(cfg_.requant == RequantMode::Fixed ? "fixed" : "float"));
  q.attrs.set("scale_bits", int64_t(cfg_.scale_bits));
  q.attrs.set("out_min", int64_t(std::max(lo, out.t.qmin())));
  q.attrs.set("out_max", int64_t(std::min(hi, out.t.qmax())));
}

void Quantizer::activation_bounds(const Node& n, const ActQ& out, int32_t& lo, int32_t& hi,
                                  bool& ok) {
  lo = out.t.qmin();
  hi = out.t.qmax();
  ok = true;
  const std::string act = n.attrs.get_string("activation", "");
  auto q = [&](float x) {
    return quantize_value(x, out.p.scale, out.p.zero_point, out.t.qmin(), out.t.qmax());
  };
  if (act.empty()) return;
  if (act == "Relu") {
    lo = q(0.0f);
  } else if (act == "Clip") {
    lo = q(n.attrs.get_float("act_alpha", -std::numeric_limits<float>::infinity()));
    hi = q(n.attrs.get_float("act_beta", std::numeric_limits<float>::infinity()));
  } else {
    ok = false;
  }
}

bool Quantizer::can_quantize(const Node& n, const LayerSettings& s, std::string& why) {
  auto need_stats = [&](int v) {
    if (v < 0 || src_.is_constant(v)) return true;
    if (qval_[size_t(v)] >= 0 || act_params(v, s)) return true;
    why = str_cat("no calibration statistics for '", src_.value(v).name, "'");
    return false;
  };
  // Intermediate values may not carry a dtype; statistics exist only for float32 tensors.
  auto float_value = [&](int v) {
    return v >= 0 && (src_.value(v).dtype == DType::F32 || src_.value(v).dtype == DType::Undefined);
  };
  if (is_conv(n) || is_gemm(n)) {
    if (!float_value(n.inputs[0]))
      return why = str_cat("input is ", dtype_name(src_.value(n.inputs[0]).dtype), ", not float32"),
             false;
    const int w = n.inputs[1];
    if (!src_.is_constant(w) || src_.value(w).dtype != DType::F32)
      return why = "weights are not a float32 constant", false;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !src_.is_constant(n.inputs[2]))
      return why = "bias is not a constant", false;
    const std::string act = n.attrs.get_string("activation", "");
    if (!act.empty() && act != "Relu" && act != "Clip")
      return why = str_cat("fused activation ", act, " has no integer form"), false;
    if (is_gemm(n)) {
      if (n.attrs.get_int("transA", 0) != 0) return why = "transA=1", false;
      if (n.attrs.get_float("alpha", 1.0f) != 1.0f || n.attrs.get_float("beta", 1.0f) != 1.0f)
        return why = "alpha/beta other than 1", false;
      if (src_.value(w).constant->rank() != 2) return why = "B is not 2-D", false;
      const int64_t N = src_.value(w).constant->dim(n.attrs.get_int("transB", 0) ? 0 : 1);
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        const Tensor& c = *src_.value(n.inputs[2]).constant;
        if (!(c.rank() == 1 && c.dim(0) == N)) return why = "bias C is not 1-D [N]", false;
      }
    }
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (i == 0 || i == 3)
        if (!need_stats(n.inputs[i])) return false;
    return need_stats(n.outputs[0]);
  }
  if (n.op_type == "Add" || n.op_type == "Concat" || n.op_type == "AveragePool" ||
      n.op_type == "GlobalAveragePool") {
    for (int v : n.inputs) {
      if (!float_value(v)) return why = "an input is not float32", false;
      if (!need_stats(v)) return false;
    }
    return need_stats(n.outputs[0]);
  }
  why = str_cat(n.op_type, " has no integer kernel");
  return false;
}

void Quantizer::quantize_conv(const Node& n, const LayerSettings& s) {
  const int x = n.inputs[0];
  const ActQ ax = *act_params(x, s);
  const int xq = ensure_q(x, s);
  const ActQ ay = *act_params(n.outputs[0], s);
  const Tensor& w = *src_.value(n.inputs[1]).constant;
  const QWeight qw = quantize_weight(w, 0, s, s.per_channel);
  const std::string& base = n.name;
  Node q;
  q.name = n.name;
  q.op_type = "QConv";
  q.domain = "engine";
  q.opset = 1;
  for (const auto& [k, v] : n.attrs.all())
    if (k != "activation" && k != "act_alpha" && k != "act_beta") q.attrs.set(k, v);
  const int bias = quantized_bias(n, x, ax, w, qw, 0);
  q.inputs = {xq,
              scale_const(src_.value(x).name + "_scale", ax.p.scale),
              zp_const(src_.value(x).name + "_zp", ax),
              add_const(base + "_weight_quantized", qw.q),
              add_const(base + "_weight_scale", qw.scale),
              add_const(base + "_weight_zp", qw.zp),
              scale_const(src_.value(n.outputs[0]).name + "_scale", ay.p.scale),
              zp_const(src_.value(n.outputs[0]).name + "_zp", ay),
              bias};
  if (n.inputs.size() > 3 && n.inputs[3] >= 0) {
    const int sv = n.inputs[3];
    const ActQ as = *act_params(sv, s);
    q.inputs.push_back(ensure_q(sv, s));
    q.inputs.push_back(scale_const(src_.value(sv).name + "_scale", as.p.scale));
    q.inputs.push_back(zp_const(src_.value(sv).name + "_zp", as));
  }
  int32_t lo = 0, hi = 0;
  bool ok = true;
  activation_bounds(n, ay, lo, hi, ok);
  set_requant_attrs(q, ay, lo, hi);
  const int y = add_value_like(n.outputs[0], "_quantized", ay.t.dtype());
  out_.value(y).quant.scale = {ay.p.scale};
  out_.value(y).quant.zero_point = {ay.p.zero_point};
  out_.value(y).quant.bits = ay.t.bits;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  emit(std::move(q));
}

void Quantizer::quantize_gemm(const Node& n, const LayerSettings& s) {
  const int a = n.inputs[0];
  const ActQ aa = *act_params(a, s);
  const int aq = ensure_q(a, s);
  const ActQ ay = *act_params(n.outputs[0], s);
  const bool transB = n.attrs.get_int("transB", 0) != 0;
  const Tensor& b = *src_.value(n.inputs[1]).constant;
  const QWeight qw = quantize_weight(b, transB ? 0 : 1, s, s.per_channel);
  const std::string& base = n.name;
  const int bias = quantized_bias(n, a, aa, b, qw, transB ? 0 : 1);
  Node q;
  q.name = n.name;
  q.op_type = "QGemm";
  q.domain = "engine";
  q.opset = 1;
  q.attrs.set("transB", int64_t(transB ? 1 : 0));
  q.inputs = {aq,
              scale_const(src_.value(a).name + "_scale", aa.p.scale),
              zp_const(src_.value(a).name + "_zp", aa),
              add_const(base + "_weight_quantized", qw.q),
              add_const(base + "_weight_scale", qw.scale),
              add_const(base + "_weight_zp", qw.zp),
              scale_const(src_.value(n.outputs[0]).name + "_scale", ay.p.scale),
              zp_const(src_.value(n.outputs[0]).name + "_zp", ay),
              bias};
  int32_t lo = 0, hi = 0;
  bool ok = true;
  activation_bounds(n, ay, lo, hi, ok);
  set_requant_attrs(q, ay, lo, hi);
  const int y = add_value_like(n.outputs[0], "_quantized", ay.t.dtype());
  out_.value(y).quant.scale = {ay.p.scale};
  out_.value(y).quant.zero_point = {ay.p.zero_point};
  out_.value(y).quant.bits = ay.t.bits;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  emit(std::move(q));
}

// A float constant input of Add / Concat: quantized on its own min/max range.
static ActQ constant_params(const Tensor& t, const LayerSettings& s) {
  ActQ a;
  a.t = QTarget{s.bits_a, s.mode_a};
  const float* d = t.data<float>();
  Range r{0, 0};
  for (int64_t i = 0; i < t.numel(); ++i) {
    r.lo = std::min(r.lo, double(d[i]));
    r.hi = std::max(r.hi, double(d[i]));
  }
  a.p = choose_qparams(r, a.t);
  return a;
}

void Quantizer::quantize_add(const Node& n, const LayerSettings& s) {
  Node q;
  q.name = n.name;
  q.op_type = "QAdd";
  q.domain = "engine";
  q.opset = 1;
  for (int v : n.inputs) {
    const std::string& vn = src_.value(v).name;
    if (src_.is_constant(v)) {
      const ActQ a = constant_params(*src_.value(v).constant, s);
      q.inputs.push_back(quantized_constant(v, a));
      q.inputs.push_back(scale_const(vn + "_scale", a.p.scale));
      q.inputs.push_back(zp_const(vn + "_zp", a));
      continue;
    }
    const ActQ a = *act_params(v, s);
    q.inputs.push_back(ensure_q(v, s));
    q.inputs.push_back(scale_const(vn + "_scale", a.p.scale));
    q.inputs.push_back(zp_const(vn + "_zp", a));
  }
  const ActQ ay = *act_params(n.outputs[0], s);
  q.inputs.push_back(scale_const(src_.value(n.outputs[0]).name + "_scale", ay.p.scale));
  q.inputs.push_back(zp_const(src_.value(n.outputs[0]).name + "_zp", ay));
  set_requant_attrs(q, ay, ay.t.qmin(), ay.t.qmax());
  const int y = add_value_like(n.outputs[0], "_quantized", ay.t.dtype());
  out_.value(y).quant.scale = {ay.p.scale};
  out_.value(y).quant.zero_point = {ay.p.zero_point};
  out_.value(y).quant.bits = ay.t.bits;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  emit(std::move(q));
}

void Quantizer::quantize_concat(const Node& n, const LayerSettings& s) {
  const ActQ ay = *act_params(n.outputs[0], s);
  Node q;
  q.name = n.name;
  q.op_type = "QConcat";
  q.domain = "engine";
  q.opset = 1;
  q.attrs.set("axis", n.attrs.get_int("axis"));
  q.inputs = {scale_const(src_.value(n.outputs[0]).name + "_scale", ay.p.scale),
              zp_const(src_.value(n.outputs[0]).name + "_zp", ay)};
  for (int v : n.inputs) {
    const std::string& vn = src_.value(v).name;
    const ActQ a =
        src_.is_constant(v) ? constant_params(*src_.value(v).constant, s) : *act_params(v, s);
    if (src_.is_constant(v)) {
      q.inputs.push_back(quantized_constant(v, a));
    } else {
      q.inputs.push_back(ensure_q(v, s));
    }
    q.inputs.push_back(scale_const(vn + "_scale", a.p.scale));
    q.inputs.push_back(zp_const(vn + "_zp", a));
  }
  set_requant_attrs(q, ay, ay.t.qmin(), ay.t.qmax());
  const int y = add_value_like(n.outputs[0], "_quantized", ay.t.dtype());
  out_.value(y).quant.scale = {ay.p.scale};
  out_.value(y).quant.zero_point = {ay.p.zero_point};
  out_.value(y).quant.bits = ay.t.bits;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  emit(std::move(q));
}

void Quantizer::quantize_avgpool(const Node& n, const LayerSettings& s) {
  const int x = n.inputs[0];
  const ActQ ax = *act_params(x, s);
  const int xq = ensure_q(x, s);
  const ActQ ay = *act_params(n.outputs[0], s);
  Node q;
  q.name = n.name;
  q.op_type = n.op_type == "AveragePool" ? "QAveragePool" : "QGlobalAveragePool";
  q.domain = "engine";
  q.opset = 1;
  q.attrs = n.attrs;
  q.inputs = {xq, scale_const(src_.value(x).name + "_scale", ax.p.scale),
              zp_const(src_.value(x).name + "_zp", ax),
              scale_const(src_.value(n.outputs[0]).name + "_scale", ay.p.scale),
              zp_const(src_.value(n.outputs[0]).name + "_zp", ay)};
  set_requant_attrs(q, ay, ay.t.qmin(), ay.t.qmax());
  const int y = add_value_like(n.outputs[0], "_quantized", ay.t.dtype());
  out_.value(y).quant.scale = {ay.p.scale};
  out_.value(y).quant.zero_point = {ay.p.zero_point};
  out_.value(y).quant.bits = ay.t.bits;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  emit(std::move(q));
}

void Quantizer::quantize_pass_through(const Node& n) {
  const int x = n.inputs[0];
  const int xq = qval_[size_t(x)];
  const ActQ a = act_.at(x);
  Node q = n;
  q.inputs[0] = xq;
  for (size_t i = 1; i < q.inputs.size(); ++i)  // shape inputs etc. stay float-side values
    if (q.inputs[i] >= 0) q.inputs[i] = ensure_f(q.inputs[i]);
  auto bound = [&](float v) {
    return quantize_value(v, a.p.scale, a.p.zero_point, a.t.qmin(), a.t.qmax());
  };
  if (n.op_type == "Relu" || n.op_type == "Clip") {
    // Relu / Clip as an integer Clip with quantized bounds.
    float lo = 0.0f, hi = std::numeric_limits<float>::infinity();
    if (n.op_type == "Clip") {
      lo = -std::numeric_limits<float>::infinity();
      if (n.opset < 11) {
        lo = n.attrs.get_float("min", lo);
        hi = n.attrs.get_float("max", hi);
      } else {
        if (n.inputs.size() > 1 && n.inputs[1] >= 0)
          lo = src_.value(n.inputs[1]).constant->data<float>()[0];
        if (n.inputs.size() > 2 && n.inputs[2] >= 0)
          hi = src_.value(n.inputs[2]).constant->data<float>()[0];
      }
    }
    ActQ l = a, h = a;
    l.p.zero_point = bound(lo);
    h.p.zero_point = bound(hi);
    q.op_type = "Clip";
    q.opset = 13;
    q.attrs = Attributes();
    q.inputs = {xq, zp_const(n.name + "_qmin", l), zp_const(n.name + "_qmax", h)};
  }
  const int y = add_value_like(n.outputs[0], "_quantized", a.t.dtype());
  out_.value(y).quant = out_.value(xq).quant;
  q.outputs = {y};
  qval_[size_t(n.outputs[0])] = y;
  act_[n.outputs[0]] = a;
  emit(std::move(q));
}

QuantizeResult Quantizer::run() {
  cfg_.validate();
  out_ = src_;
  out_.nodes.clear();
  qval_.assign(out_.values.size(), -1);
  float_ready_.assign(out_.values.size(), 0);
  for (int v : src_.inputs) float_ready_[size_t(v)] = 1;
  for (size_t v = 0; v < src_.values.size(); ++v)
    if (src_.values[v].constant) float_ready_[v] = 1;

  // Which nodes may be quantized at all: --quantize-from, --keep-first-last-fp32.
  size_t from = 0;
  if (!cfg_.quantize_from.empty()) {
    from = src_.nodes.size();
    for (size_t i = 0; i < src_.nodes.size(); ++i)
      if (src_.nodes[i].name == cfg_.quantize_from) from = i;
    if (from == src_.nodes.size()) {
      std::string names;
      for (size_t i = 0; i < src_.nodes.size() && i < 8; ++i)
        names += (i ? ", " : "") + src_.nodes[i].name;
      fail("--quantize-from: no node named '", cfg_.quantize_from, "' in the graph after fusion (",
           "first nodes: ", names, "; `engine inspect` lists them all)");
    }
  }
  int first_compute = -1, last_compute = -1;
  for (size_t i = 0; i < src_.nodes.size(); ++i)
    if (is_compute(src_.nodes[i])) {
      if (first_compute < 0) first_compute = int(i);
      last_compute = int(i);
    }

  QuantizeResult res;
  for (size_t i = 0; i < src_.nodes.size(); ++i) {
    const Node& n = src_.nodes[i];
    const LayerSettings s = cfg_.settings_for(n);
    NodeDecision d{n.name, n.op_type, false, ""};
    bool enabled = true;
    if (i < from) {
      enabled = false;
      d.reason = "before --quantize-from";
    } else if (cfg_.keep_first_last_fp32 && (int(i) == first_compute || int(i) == last_compute)) {
      enabled = false;
      d.reason = "first/last layer kept in FP32";
    } else if (!s.quantize) {
      enabled = false;
      d.reason = "excluded by configuration";
    }
    bool done = false;
    if (enabled && is_pass_through(n) && !n.inputs.empty() && n.inputs[0] >= 0 &&
        qval_[size_t(n.inputs[0])] >= 0 && act_.count(n.inputs[0])) {
      bool ok = true;
      if (n.op_type == "Clip" && n.opset >= 11)
        for (size_t k = 1; k < n.inputs.size(); ++k)
          ok = ok && (n.inputs[k] < 0 || src_.is_constant(n.inputs[k]));
      if (ok) {
        quantize_pass_through(n);
        done = true;
      }
    }
    if (!done && enabled && !is_pass_through(n)) {
      std::string why;
      if (can_quantize(n, s, why)) {
        if (is_conv(n))
          quantize_conv(n, s);
        else if (is_gemm(n))
          quantize_gemm(n, s);
        else if (n.op_type == "Add")
          quantize_add(n, s);
        else if (n.op_type == "Concat")
          quantize_concat(n, s);
        else
          quantize_avgpool(n, s);
        done = true;
      } else {
        d.reason = why;
      }
    } else if (!done && enabled) {
      d.reason = "input is not quantized";
    }
    if (done) {
      d.quantized = true;
      d.reason.clear();
    } else {
      Node f = n;
      for (int& v : f.inputs)
        if (v >= 0) v = ensure_f(v);
      for (int v : f.outputs)
        if (v >= 0) float_ready_[size_t(v)] = 1;
      emit(std::move(f));
    }
    res.decisions.push_back(d);
  }
  for (int v : src_.outputs) ensure_f(v);

  // Drop float weights nobody reads any more.
  std::vector<char> used(out_.values.size(), 0);
  for (const Node& n : nodes_)
    for (int v : n.inputs)
      if (v >= 0) used[size_t(v)] = 1;
  for (int v : out_.outputs) used[size_t(v)] = 1;
  for (size_t v = 0; v < out_.values.size(); ++v)
    if (!used[v] && out_.values[v].constant) out_.values[v].constant.reset();

  for (size_t v = 0; v < src_.values.size(); ++v)
    if (qval_[v] >= 0) res.quantized_values[src_.values[v].name] = out_.value(qval_[v]).name;
  out_.nodes = std::move(nodes_);
  out_.reindex();
  res.graph = std::move(out_);
  res.chosen = chosen_;
  res.quantize_nodes = nq_;
  res.dequantize_nodes = ndq_;
  return res;
}

}  // namespace

QuantizeResult quantize_graph(const Graph& g, const StatsMap& stats, const QuantConfig& cfg,
                              const std::map<std::string, Range>& range_overrides) {
  Quantizer q(g, stats, cfg, range_overrides);
  return q.run();
}

bool is_quantized_graph(const Graph& g) {
  for (const Node& n : g.nodes) {
    if (n.domain == "engine" && n.op_type.size() > 1 && n.op_type[0] == 'Q') return true;
    if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear" ||
        n.op_type.rfind("QLinear", 0) == 0 || n.op_type == "ConvInteger" ||
        n.op_type == "MatMulInteger")
      return true;
  }
  return false;
}

}  // namespace engine::quant
