// Differential libFuzzer target: the input bytes describe a small valid CNN (convolutions with
// random kernels, strides, pads, dilations and groups; activations; BatchNormalization; residual
// Adds; Concat; pools; Pad; a final Gemm), built as ONNX and run twice:
// - FP32: reference kernels without fusion vs oneDNN with the chosen fusion preset; the outputs
//   must agree to float rounding;
// - INT8: the same statistics quantize both models (one requantization mode, bit widths and
//   granularity from the bytes); the reference kernels and the fast kernels (on the integer-GEMM
//   path chosen by the bytes) must give the same integers, so the outputs must be bit-identical.
// A disagreement prints the graph and aborts, which libFuzzer records as a crash.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../model_builder.h"
#include "engine/engine.h"
#include "ops/igemm.h"

namespace {

using engine::Dims;
using engine::Tensor;
using engine::test::ModelBuilder;

class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  int next(int mod) { return i_ < n_ ? int(d_[i_++] % unsigned(mod)) : 0; }
  bool done() const { return i_ >= n_; }

 private:
  const uint8_t* d_;
  size_t n_, i_ = 0;
};

struct Val {
  std::string name;
  Dims shape;  // N, C, H, W
};

struct Builder {
  ModelBuilder mb;
  std::mt19937 rng;
  std::string log;
  int id = 0;

  std::string fresh(const char* what) { return std::string(what) + std::to_string(id++); }
  Tensor normal(Dims d, float scale, float mean = 0.0f) {
    Tensor t(engine::DType::F32, d);
    std::normal_distribution<float> nd(mean, scale);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
    return t;
  }
  std::string init(const Tensor& t) {
    const std::string n = fresh("w");
    mb.init(n, t);
    return n;
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& in,
                        const std::string& out) {
    log += "  " + op + " ->" + out + "\n";
    return mb.node(op, in, {out}, out);
  }
};

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  const int64_t span = in + p0 + p1 - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// Appends one layer after `x` (or joins x with an earlier value); returns the new value.
Val layer(Builder& b, Bytes& r, const Val& x, const std::vector<Val>& earlier) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const std::string out = b.fresh("t");
  switch (r.next(9)) {
    case 0:
    case 1: {  // Conv: 1/3 plain, 1/3 depthwise, 1/3 grouped where channels allow
      int64_t M = 1 + r.next(24), group = 1;
      const int kind = r.next(3);
      if (kind == 1) {
        group = C;
        M = C * (1 + r.next(2));
      } else if (kind == 2) {
        group = std::gcd(C, M);
      }
      const int64_t kh = 1 + r.next(5), kw = r.next(2) ? kh : 1 + r.next(5);
      const int64_t s = 1 + r.next(3), d = 1 + r.next(2);
      std::vector<int64_t> pads = {r.next(int(kh)), r.next(int(kw)), r.next(int(kh)),
                                   r.next(int(kw))};
      int64_t oh = conv_out(H, kh, s, d, pads[0], pads[2]);
      int64_t ow = conv_out(W, kw, s, d, pads[1], pads[3]);
      if (oh < 1 || ow < 1) return x;  // the kernel does not fit
      const float he = std::sqrt(2.0f / float((C / group) * kh * kw));
      std::vector<std::string> in = {x.name, b.init(b.normal({M, C / group, kh, kw}, he))};
      if (r.next(2)) in.push_back(b.init(b.normal({M}, 0.1f)));
      auto& n = b.node("Conv", in, out);
      ModelBuilder::attr_ints(n, "kernel_shape", {kh, kw});
      ModelBuilder::attr_ints(n, "strides", {s, s});
      ModelBuilder::attr_ints(n, "dilations", {d, d});
      ModelBuilder::attr_ints(n, "pads", pads);
      ModelBuilder::attr_int(n, "group", group);
      b.log += "    M=" + std::to_string(M) + " k=" + std::to_string(kh) + "x" +
               std::to_string(kw) + " s=" + std::to_string(s) + " d=" + std::to_string(d) +
               " g=" + std::to_string(group) + "\n";
      return {out, {N, M, oh, ow}};
    }
    case 2: {  // activation
      switch (r.next(6)) {
        case 0:
          b.node("Relu", {x.name}, out);
          break;
        case 1: {
          auto lo = b.init(Tensor::scalar<float>(0.0f)), hi = b.init(Tensor::scalar<float>(6.0f));
          b.node("Clip", {x.name, lo, hi}, out);
          break;
        }
        case 2:
          ModelBuilder::attr_float(b.node("LeakyRelu", {x.name}, out), "alpha", 0.1f);
          break;
        case 3:
          b.node("Sigmoid", {x.name}, out);
          break;
        case 4:
          b.node("HardSwish", {x.name}, out);
          break;
        default: {  // SiLU as x * sigmoid(x)
          const std::string sg = b.fresh("sig");
          b.node("Sigmoid", {x.name}, sg);
          b.node("Mul", {x.name, sg}, out);
        }
      }
      return {out, x.shape};
    }
    case 3: {  // BatchNormalization
      std::vector<std::string> in = {x.name};
      in.push_back(b.init(b.normal({C}, 0.2f, 1.0f)));  // scale
      in.push_back(b.init(b.normal({C}, 0.2f)));        // bias
      in.push_back(b.init(b.normal({C}, 0.2f)));        // mean
      Tensor var = b.normal({C}, 0.2f, 1.0f);
      for (int64_t i = 0; i < C; ++i) var.data<float>()[i] = std::abs(var.data<float>()[i]) + 0.1f;
      in.push_back(b.init(var));
      b.node("BatchNormalization", in, out);
      return {out, x.shape};
    }
    case 4: {  // residual Add with an earlier value of the same shape, else a per-channel bias
      for (auto it = earlier.rbegin(); it != earlier.rend(); ++it)
        if (it->shape == x.shape && it->name != x.name && r.next(2)) {
          b.node("Add", {r.next(2) ? x.name : it->name, r.next(2) ? it->name : x.name}, out);
          return {out, x.shape};
        }
      b.node("Add", {x.name, b.init(b.normal({1, C, 1, 1}, 0.3f))}, out);
      return {out, x.shape};
    }
    case 5: {  // Concat on channels with an earlier value of the same N, H, W
      for (auto it = earlier.rbegin(); it != earlier.rend(); ++it)
        if (it->shape[2] == H && it->shape[3] == W && it->name != x.name) {
          ModelBuilder::attr_int(b.node("Concat", {x.name, it->name}, out), "axis", 1);
          return {out, {N, C + it->shape[1], H, W}};
        }
      b.node("Mul", {x.name, b.init(b.normal({1, C, 1, 1}, 0.5f, 1.0f))}, out);
      return {out, x.shape};
    }
    case 6: {  // MaxPool / AveragePool
      const bool avg = r.next(2);
      const int64_t k = 1 + r.next(3), s = 1 + r.next(2);
      const int64_t p = r.next(int(k));
      const int64_t oh = conv_out(H, k, s, 1, p, p), ow = conv_out(W, k, s, 1, p, p);
      if (oh < 1 || ow < 1) return x;
      auto& n = b.node(avg ? "AveragePool" : "MaxPool", {x.name}, out);
      ModelBuilder::attr_ints(n, "kernel_shape", {k, k});
      ModelBuilder::attr_ints(n, "strides", {s, s});
      ModelBuilder::attr_ints(n, "pads", {p, p, p, p});
      if (avg) ModelBuilder::attr_int(n, "count_include_pad", r.next(2));
      return {out, {N, C, oh, ow}};
    }
    case 7: {  // GlobalAveragePool (rarely: it ends the spatial part)
      if (r.next(3)) return x;
      b.node("GlobalAveragePool", {x.name}, out);
      return {out, {N, C, 1, 1}};
    }
    default: {  // zero Pad on H and W (folded into a following Conv)
      const int64_t t = r.next(3), l = r.next(3), bo = r.next(3), ri = r.next(3);
      Tensor pads(engine::DType::I64, {8});
      const int64_t v[8] = {0, 0, t, l, 0, 0, bo, ri};
      std::copy(v, v + 8, pads.data<int64_t>());
      b.node("Pad", {x.name, b.init(pads)}, out);
      return {out, {N, C, H + t + bo, W + l + ri}};
    }
  }
}

[[noreturn]] void report(const char* what, const std::string& graph, const std::string& detail) {
  std::fprintf(stderr, "fuzz_diff: %s\ngraph:\n%s%s\n", what, graph.c_str(), detail.c_str());
  std::abort();
}

// Largest |x| of a float tensor; inf or NaN if it holds one.
double max_abs_of(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double x = std::abs(double(t.data<float>()[i]));
    if (!(x <= m)) m = x;
  }
  return m;
}

// "" when got equals want to float rounding (every |difference| <= 1e-4 (1 + max |want|)) or
// want is not finite (an overflowing random network: nothing to compare); else what differs.
std::string float_mismatch(const Tensor& want, const Tensor& got) {
  const double limit = 1e-4 * (1.0 + max_abs_of(want));
  if (!std::isfinite(limit)) return "";
  int64_t count = 0, first = -1;
  for (int64_t i = 0; i < want.numel(); ++i)
    if (!(std::abs(double(want.data<float>()[i]) - double(got.data<float>()[i])) <= limit)) {
      if (first < 0) first = i;
      ++count;
    }
  if (first < 0) return "";
  return "first difference at " + std::to_string(first) + ": " +
         std::to_string(want.data<float>()[first]) + " vs " +
         std::to_string(got.data<float>()[first]) + ", " + std::to_string(count) + " of " +
         std::to_string(want.numel()) + " beyond rounding";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes r(data, size);
  Builder b;
  b.rng.seed(unsigned(r.next(256)));
  const int64_t N = 1 + r.next(2), C = 1 + r.next(8), H = 1 + r.next(12), W = 1 + r.next(12);
  b.mb.input("x", {-1, C, H, W});
  Val x{"x", {N, C, H, W}};
  std::vector<Val> seen = {x};
  const int layers = 1 + r.next(8);
  for (int i = 0; i < layers; ++i) {
    x = layer(b, r, x, seen);
    seen.push_back(x);
  }
  if (r.next(2)) {  // classifier head
    const std::string flat = b.fresh("flat"), out = b.fresh("t");
    b.node("Flatten", {x.name}, flat);
    const int64_t K = x.shape[1] * x.shape[2] * x.shape[3], M = 1 + r.next(12);
    auto& g = b.node(
        "Gemm",
        {flat, b.init(b.normal({M, K}, std::sqrt(1.0f / float(K)))), b.init(b.normal({M}, 0.1f))},
        out);
    ModelBuilder::attr_int(g, "transB", 1);
    x = {out, {N, M}};
  }
  if (x.name == "x") return 0;  // nothing was added
  b.mb.output(x.name);
  const char* presets[] = {"none", "blocks", "all"};
  const std::string fuse = presets[r.next(3)];
  const engine::IgemmIsa isas[] = {engine::IgemmIsa::Reference, engine::IgemmIsa::Avx2,
                                   engine::IgemmIsa::AvxVnni, engine::IgemmIsa::Avx512Vnni};
  const engine::IgemmIsa isa = engine::set_igemm_isa_for_testing(isas[r.next(4)]);
  engine::quant::QuantConfig cfg;
  cfg.requant = r.next(2) ? engine::quant::RequantMode::Fixed : engine::quant::RequantMode::Float;
  cfg.defaults.per_channel = r.next(2);
  cfg.defaults.bits_w = 8 - r.next(3);
  cfg.defaults.mode_a = r.next(2) ? engine::quant::QMode::AsymU : engine::quant::QMode::AsymS;
  const std::string graph = b.log + "  N=" + std::to_string(N) + " C=" + std::to_string(C) +
                            " H=" + std::to_string(H) + " W=" + std::to_string(W) +
                            " fuse=" + fuse + " isa=" + engine::igemm_isa_name(isa) +
                            " per_channel=" + std::to_string(cfg.defaults.per_channel) +
                            " bits_w=" + std::to_string(cfg.defaults.bits_w) + "\n";

  const std::string bytes = b.mb.bytes();
  engine::ModelOptions ref_opt, fast_opt;
  ref_opt.threads = fast_opt.threads = 1;
  ref_opt.backend = "reference";
  ref_opt.passes.fuse = "none";
  fast_opt.passes.fuse = fuse;
  engine::Model ref = engine::Model::load_from_memory(bytes, ref_opt);
  engine::Model fast = engine::Model::load_from_memory(bytes, fast_opt);
  const Tensor in = b.normal({N, C, H, W}, 1.0f);
  const Tensor want = ref.run({in})[0], got = fast.run({in})[0];
  if (want.shape() != got.shape()) report("FP32 output shapes differ", graph, "");
  if (!std::isfinite(max_abs_of(want))) return 0;  // the random network overflowed
  const std::string d = float_mismatch(want, got);
  if (!d.empty()) report("FP32 outputs differ", graph, d);

  // INT8: one set of statistics (from the reference model) quantizes the same IR twice.
  ref_opt.passes.fuse = fuse;
  engine::Model ref_fused = engine::Model::load_from_memory(bytes, ref_opt);
  std::vector<Tensor> calib;
  for (int i = 0; i < 2; ++i) calib.push_back(b.normal({N, C, H, W}, 1.0f));
  size_t next = 0;
  const engine::quant::StatsMap stats = ref_fused.calibrate(
      [&](std::vector<Tensor>& inputs) {
        if (next == calib.size()) return false;
        inputs = {calib[next++]};
        return true;
      },
      cfg.stats_options);
  const engine::Model qref = ref_fused.quantize(cfg, stats);
  const engine::Model qfast = fast.quantize(cfg, stats);
  // Every value of the quantized IR: integer tensors must match exactly, float ones (values left
  // in FP32, e.g. float logits) to float rounding.
  std::set<std::string> watch;
  for (const engine::Node& n : qref.ir().nodes)
    for (int o : n.outputs)
      if (o >= 0) watch.insert(qref.ir().value(o).name);
  std::map<std::string, Tensor> a, c;
  qref.run_watch({in}, watch, [&](const std::string& n, const Tensor& t) { a[n] = t.clone(); });
  qfast.run_watch({in}, watch, [&](const std::string& n, const Tensor& t) { c[n] = t.clone(); });
  int compared = 0;
  for (const auto& [name, t] : a) {
    auto it = c.find(name);
    if (it == c.end()) continue;  // fused away by the lowering
    ++compared;
    const Tensor& u = it->second;
    if (t.shape() != u.shape() || t.dtype() != u.dtype())
      report("INT8 value shapes or types differ", graph,
             name + ": " + engine::dims_str(t.shape()) + " " + engine::dtype_name(t.dtype()) +
                 " vs " + engine::dims_str(u.shape()) + " " + engine::dtype_name(u.dtype()));
    const std::string what = "INT8 value '" + name + "': ";
    if (t.dtype() == engine::DType::F32) {
      const std::string fd = float_mismatch(t, u);
      if (!fd.empty()) report("INT8 graph: float values differ", graph, what + fd);
    } else if (std::memcmp(t.raw(), u.raw(), size_t(t.nbytes())) != 0) {
      int64_t first = 0;
      const auto* p = static_cast<const uint8_t*>(t.raw());
      const auto* q = static_cast<const uint8_t*>(u.raw());
      while (p[first] == q[first]) ++first;
      report("INT8 graph: integer values differ (reference vs fast kernels)", graph,
             what + "first differing byte " + std::to_string(first) + ": " +
                 std::to_string(p[first]) + " vs " + std::to_string(q[first]));
    }
  }
  if (compared == 0)
    report("INT8 graph: no value to compare", graph,
           std::to_string(watch.size()) + " watched, " + std::to_string(a.size()) + " and " +
               std::to_string(c.size()) + " seen");
  // A watch of values that backend fusions fold away runs an unfused lowering (run_watch), so
  // the plain runs' outputs are compared too: they go through the fused kernels.
  const Tensor qa = qref.run({in})[0], qb = qfast.run({in})[0];
  if (qa.shape() != qb.shape() || qa.dtype() != qb.dtype())
    report("INT8 output shapes or types differ", graph, "");
  if (qa.dtype() == engine::DType::F32) {
    const std::string fd = float_mismatch(qa, qb);
    if (!fd.empty()) report("INT8 graph: float outputs differ", graph, fd);
  } else if (std::memcmp(qa.raw(), qb.raw(), size_t(qa.nbytes())) != 0) {
    report("INT8 graph: integer outputs differ (reference vs fused fast kernels)", graph, "");
  }
  return 0;
}
