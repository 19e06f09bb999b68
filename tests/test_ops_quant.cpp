// Tests of the integer reference kernels: QConv / QLinearConv / ConvInteger, QGemm /
// QLinearMatMul / MatMulInteger and QuantizeLinear / DequantizeLinear. Expected values come from
// naive loops written here (one accumulator per output, no im2col, no blocking) or from hand math.
// The naive requantization uses the primitives of quant/fixedpoint.h (the numerics contract) and
// is also checked against the real-valued result.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "ops/igemm.h"
#include "ops/ops.h"
#include "quant/fixedpoint.h"
#include "tests/op_test_util.h"

using namespace engine;
using engine::test::NodeSpec;
using engine::test::run_node;

namespace {

const OpRegistry& qreg() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_quantize_linear_ops(reg);
    register_qconv_ops(reg);
    register_qgemm_ops(reg);
    return reg;
  }();
  return r;
}

using Ints = std::vector<int64_t>;

// Runs f once per integer GEMM / requantization path this CPU supports (ops/igemm.h), then
// restores the default path.
template <class F>
void for_each_isa(F&& f) {
  struct Restore {
    ~Restore() { reset_igemm_isa_for_testing(); }
  } restore;
  for (IgemmIsa isa :
       {IgemmIsa::Reference, IgemmIsa::Avx2, IgemmIsa::AvxVnni, IgemmIsa::Avx512Vnni}) {
    if (set_igemm_isa_for_testing(isa) != isa) continue;
    INFO("integer kernel path ", std::string(igemm_isa_name(isa)));
    f();
  }
}

int32_t qmin_of(DType t) {
  return t == DType::U8 ? 0 : -128;
}
int32_t qmax_of(DType t) {
  return t == DType::U8 ? 255 : 127;
}

// Tensor of dtype t (uint8 / int8 / int32) from int values.
Tensor ints(DType t, const Dims& shape, const std::vector<int32_t>& v) {
  Tensor r(t, shape);
  REQUIRE(size_t(r.numel()) == v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::U8) r.data<uint8_t>()[i] = uint8_t(v[i]);
    if (t == DType::I8) r.data<int8_t>()[i] = int8_t(v[i]);
    if (t == DType::I32) r.data<int32_t>()[i] = v[i];
  }
  return r;
}
std::vector<int32_t> rand_ints(std::mt19937& rng, size_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> u(lo, hi);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = u(rng);
  return v;
}
std::vector<int32_t> values(const Tensor& t) {
  std::vector<int32_t> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = int32_t(t.get_as_int(i));
  return v;
}
// A scale / zero-point tensor: one value as a scalar or as shape [1], else shape [n].
Tensor qparam_f(const std::vector<float>& v, bool as_vec1) {
  if (v.size() == 1 && !as_vec1) return Tensor::scalar(v[0]);
  return Tensor::from_vector(Dims{int64_t(v.size())}, v);
}
Tensor qparam_i(DType t, const std::vector<int32_t>& v, bool as_vec1) {
  return ints(t, v.size() == 1 && !as_vec1 ? Dims{} : Dims{int64_t(v.size())}, v);
}

// Requantization of one accumulator as the op definitions state it.
struct Requant {
  bool fixed = true;
  int bits = 31;
  int32_t lo = 0, hi = 255, yzp = 0;
  int32_t operator()(int32_t acc, float in_s, float w_s, float y_s, bool has_sum = false,
                     int32_t ds = 0, float s_s = 0) const {
    if (fixed) {
      int64_t v = yzp + quant::apply_multiplier(
                            acc, quant::decompose_multiplier(double(in_s) * w_s / y_s, bits));
      if (has_sum)
        v += quant::apply_multiplier(ds, quant::decompose_multiplier(double(s_s) / y_s, bits));
      return int32_t(std::clamp<int64_t>(v, lo, hi));
    }
    float v = float(acc) * (in_s * w_s / y_s);
    if (has_sum) v += float(ds) * (s_s / y_s);
    v = std::clamp(v, float(lo - yzp), float(hi - yzp));
    return yzp + int32_t(std::nearbyint(v));
  }
  // The real-valued result the integer one approximates.
  double real(int64_t acc, double in_s, double w_s, double y_s, int64_t ds = 0,
              double s_s = 0) const {
    return std::clamp(yzp + (double(acc) * in_s * w_s + double(ds) * s_s) / y_s, double(lo),
                      double(hi));
  }
};

// ------------------------------------------------------------------ convolution

struct ConvCase {
  int nsp = 2;
  int64_t N = 1, C = 1, M = 1, group = 1;
  Ints in, k, s, d, pads;  // per spatial axis; pads: begins then ends
  DType xt = DType::U8, wt = DType::I8, yt = DType::U8, st = DType::U8;
  bool per_channel = true, bias = true, sum = false, fixed = true, clamp = false;
  int bits = 31;
};

struct ConvData {
  std::vector<int32_t> x, w, bias, sum, wzp;
  int32_t xzp = 0, yzp = 0, szp = 0;
  float xs = 0, ys = 0, ss = 0;
  std::vector<float> ws;
  Ints out;
  int32_t lo = 0, hi = 255;
};

ConvData make_conv_data(const ConvCase& c, std::mt19937& rng) {
  ConvData D;
  const int64_t Cg = c.C / c.group;
  int64_t in_sz = 1, k_sz = 1, out_sz = 1;
  for (int i = 0; i < c.nsp; ++i) {
    in_sz *= c.in[size_t(i)];
    k_sz *= c.k[size_t(i)];
    const int64_t ek = (c.k[size_t(i)] - 1) * c.d[size_t(i)] + 1;
    D.out.push_back((c.in[size_t(i)] + c.pads[size_t(i)] + c.pads[size_t(i + c.nsp)] - ek) /
                        c.s[size_t(i)] +
                    1);
    out_sz *= D.out.back();
  }
  D.x = rand_ints(rng, size_t(c.N * c.C * in_sz), qmin_of(c.xt), qmax_of(c.xt));
  D.w = rand_ints(rng, size_t(c.M * Cg * k_sz), qmin_of(c.wt), qmax_of(c.wt));
  D.xzp = rand_ints(rng, 1, qmin_of(c.xt), qmax_of(c.xt))[0];
  const size_t nch = c.per_channel ? size_t(c.M) : 1;
  // Mostly symmetric weights (zero point 0 for int8), sometimes not.
  D.wzp = rng() % 3 == 0 ? rand_ints(rng, nch, qmin_of(c.wt), qmax_of(c.wt))
                         : std::vector<int32_t>(nch, c.wt == DType::U8 ? 128 : 0);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  D.xs = 0.02f * u(rng);
  for (size_t i = 0; i < nch; ++i) D.ws.push_back(0.01f * u(rng));
  // Output scale so that |acc * M| is about 100: part of the outputs saturate.
  D.ys = D.xs * D.ws[0] * 60.0f * std::sqrt(float(Cg * k_sz)) * u(rng);
  D.yzp = rand_ints(rng, 1, qmin_of(c.yt) + 20, qmax_of(c.yt) - 20)[0];
  if (c.bias) D.bias = rand_ints(rng, size_t(c.M), -20000, 20000);
  if (c.sum) {
    D.sum = rand_ints(rng, size_t(c.N * c.M * out_sz), qmin_of(c.st), qmax_of(c.st));
    D.szp = rand_ints(rng, 1, qmin_of(c.st), qmax_of(c.st))[0];
    D.ss = D.ys * u(rng);
  }
  D.lo = qmin_of(c.yt);
  D.hi = qmax_of(c.yt);
  if (c.clamp) {
    D.lo = D.yzp - int32_t(rng() % 10);
    D.hi = std::min(D.yzp + 10 + int32_t(rng() % 40), D.hi);
  }
  return D;
}

Attributes conv_attrs(const ConvCase& c, const ConvData& D, bool qconv) {
  Attributes a;
  a.set("group", c.group);
  a.set("strides", c.s);
  a.set("dilations", c.d);
  a.set("pads", c.pads);
  a.set("kernel_shape", c.k);
  if (qconv) {
    a.set("requant", std::string(c.fixed ? "fixed" : "float"));
    a.set("scale_bits", int64_t(c.bits));
    if (c.clamp) {
      a.set("out_min", int64_t(D.lo));
      a.set("out_max", int64_t(D.hi));
    }
  }
  return a;
}

// Inputs 0..11 of QConv (QLinearConv takes the first 9).
std::vector<Tensor> conv_inputs(const ConvCase& c, const ConvData& D, int vec1) {
  Dims xs{c.N, c.C}, ws{c.M, c.C / c.group};
  for (int i = 0; i < c.nsp; ++i) {
    xs.push_back(c.in[size_t(i)]);
    ws.push_back(c.k[size_t(i)]);
  }
  Dims ys{c.N, c.M};
  for (int64_t o : D.out) ys.push_back(o);
  std::vector<Tensor> in = {ints(c.xt, xs, D.x),
                            qparam_f({D.xs}, vec1 & 1),
                            qparam_i(c.xt, {D.xzp}, vec1 & 2),
                            ints(c.wt, ws, D.w),
                            qparam_f(D.ws, vec1 & 4),
                            qparam_i(c.wt, D.wzp, vec1 & 4),
                            qparam_f({D.ys}, false),
                            qparam_i(c.yt, {D.yzp}, false),
                            c.bias ? ints(DType::I32, {c.M}, D.bias) : Tensor()};
  if (c.sum) {
    in.push_back(ints(c.st, ys, D.sum));
    in.push_back(qparam_f({D.ss}, false));
    in.push_back(qparam_i(c.st, {D.szp}, false));
  }
  return in;
}

// Naive convolution: int64 accumulators, then requantization (or raw int32 for integer_only).
std::vector<int32_t> naive_conv(const ConvCase& c, const ConvData& D, bool integer_only,
                                std::vector<double>* real = nullptr) {
  // Canonical 3 spatial dims (leading dims of size 1).
  auto c3 = [&](const Ints& v, int64_t def, int off = 0) {
    Ints r(3, def);
    for (int i = 0; i < c.nsp; ++i) r[size_t(3 - c.nsp + i)] = v[size_t(off + i)];
    return r;
  };
  const Ints in = c3(c.in, 1), k = c3(c.k, 1), s = c3(c.s, 1), d = c3(c.d, 1), pb = c3(c.pads, 0);
  const Ints out = c3(D.out, 1);
  const int64_t Cg = c.C / c.group, Mg = c.M / c.group;
  Requant rq{c.fixed, c.bits, D.lo, D.hi, D.yzp};
  std::vector<int32_t> y;
  int64_t yi = 0;
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t oc = 0; oc < c.M; ++oc)
      for (int64_t oz = 0; oz < out[0]; ++oz)
        for (int64_t oy = 0; oy < out[1]; ++oy)
          for (int64_t ox = 0; ox < out[2]; ++ox, ++yi) {
            const int32_t wzp = D.wzp[c.per_channel ? size_t(oc) : 0];
            int64_t acc = 0;
            for (int64_t ci = 0; ci < Cg; ++ci) {
              const int64_t ch = (oc / Mg) * Cg + ci;
              for (int64_t kz = 0; kz < k[0]; ++kz)
                for (int64_t ky = 0; ky < k[1]; ++ky)
                  for (int64_t kx = 0; kx < k[2]; ++kx) {
                    const int64_t iz = oz * s[0] - pb[0] + kz * d[0];
                    const int64_t iy = oy * s[1] - pb[1] + ky * d[1];
                    const int64_t ix = ox * s[2] - pb[2] + kx * d[2];
                    if (iz < 0 || iz >= in[0] || iy < 0 || iy >= in[1] || ix < 0 || ix >= in[2])
                      continue;
                    const int32_t xv =
                        D.x[size_t((((n * c.C + ch) * in[0] + iz) * in[1] + iy) * in[2] + ix)];
                    const int32_t wv =
                        D.w[size_t((((oc * Cg + ci) * k[0] + kz) * k[1] + ky) * k[2] + kx)];
                    acc += int64_t(xv - D.xzp) * (wv - wzp);
                  }
            }
            if (c.bias) acc += D.bias[size_t(oc)];
            REQUIRE(acc == int64_t(int32_t(acc)));
            if (integer_only) {
              y.push_back(int32_t(acc));
              continue;
            }
            const float ws = D.ws[c.per_channel ? size_t(oc) : 0];
            const int32_t ds = c.sum ? D.sum[size_t(yi)] - D.szp : 0;
            y.push_back(rq(int32_t(acc), D.xs, ws, D.ys, c.sum, ds, D.ss));
            if (real) real->push_back(rq.real(acc, D.xs, ws, D.ys, ds, D.ss));
          }
  return y;
}

NodeSpec qconv_node(const Attributes& a, const std::string& op = "QConv",
                    const std::string& domain = "engine") {
  NodeSpec s;
  s.op_type = op;
  s.domain = domain;
  s.attrs = a;
  s.opset = 13;
  return s;
}

// Output / sum types, scales, bias, sum, clamp and requantization mode of random case i.
void random_quant_options(ConvCase& c, std::mt19937& rng, int i) {
  c.yt = rng() % 2 ? DType::U8 : DType::I8;
  c.st = rng() % 2 ? DType::U8 : DType::I8;
  c.per_channel = rng() % 3 != 0;
  c.bias = rng() % 4 != 0;
  c.sum = rng() % 3 == 0;
  c.clamp = rng() % 4 == 0;
  c.fixed = i % 2 == 0;
  c.bits = (i / 2) % 4 == 3 ? 12 : 31;
}

ConvCase random_conv_case(std::mt19937& rng, int i) {
  const int64_t odd[] = {1, 3, 7, 17};
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  ConvCase c;
  c.nsp = i % 7 == 0 ? 1 : i % 7 == 1 ? 3 : 2;
  c.N = pick(1, 3);
  const int gk = int(rng() % 3);  // 0: one group, 1: a few groups, 2: depthwise
  c.group = gk == 0 ? 1 : gk == 1 ? pick(2, 3) : odd[rng() % 4];
  c.C = gk == 2 ? c.group : c.group * odd[rng() % 4];
  c.M = c.group * (gk == 2 ? pick(1, 2) : odd[rng() % 4]);
  for (int a = 0; a < c.nsp; ++a) {
    c.k.push_back(pick(1, c.nsp == 3 ? 2 : 3));
    c.s.push_back(pick(1, 2));
    c.d.push_back(pick(1, 2));
    c.in.push_back(pick((c.k.back() - 1) * c.d.back() + 1, c.nsp == 3 ? 6 : 11));
  }
  for (int a = 0; a < 2 * c.nsp; ++a) c.pads.push_back(pick(0, 2));
  c.xt = rng() % 2 ? DType::U8 : DType::I8;
  c.wt = rng() % 4 ? DType::I8 : DType::U8;
  random_quant_options(c, rng, i);
  return c;
}

std::string case_str(const ConvCase& c) {
  return str_cat("nsp=", c.nsp, " N=", c.N, " C=", c.C, " M=", c.M, " group=", c.group,
                 " in=", dims_str(c.in), " k=", dims_str(c.k), " s=", dims_str(c.s),
                 " d=", dims_str(c.d), " pads=", dims_str(c.pads), " x=", dtype_name(c.xt),
                 " w=", dtype_name(c.wt), " y=", dtype_name(c.yt), " per_channel=", c.per_channel,
                 " bias=", c.bias, " sum=", c.sum, " clamp=", c.clamp, " fixed=", c.fixed,
                 " bits=", c.bits);
}

void check_conv_case(const ConvCase& c, std::mt19937& rng, int vec1) {
  INFO(case_str(c));
  const ConvData D = make_conv_data(c, rng);
  std::vector<double> real;
  const std::vector<int32_t> want = naive_conv(c, D, false, &real);
  const Tensor y = run_node(qreg(), qconv_node(conv_attrs(c, D, true)), conv_inputs(c, D, vec1))[0];
  REQUIRE(y.dtype() == c.yt);
  Dims ys{c.N, c.M};
  for (int64_t o : D.out) ys.push_back(o);
  REQUIRE(y.shape() == ys);
  const std::vector<int32_t> got = values(y);
  int64_t bad = 0, far = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    bad += got[i] != want[i];
    // Independent of the rounding primitives: within one unit of the real-valued result
    // (two with a sum input, which is rounded separately in fixed mode; 12-bit multipliers add a
    // relative error up to 2^-12 of |acc * M| <~ 300).
    const double tol = (c.sum ? 2.0 : 1.0) + (c.bits < 31 ? 0.5 : 0.0);
    far += std::abs(got[i] - real[i]) > tol;
    if (got[i] < D.lo || got[i] > D.hi) ++far;
  }
  CHECK(bad == 0);
  CHECK(far == 0);
}

// Large convolutions: chunked im2col rows, several images per GEMM, depthwise.
void check_large_convs() {
  std::mt19937 rng(77);
  ConvCase c;  // 2304 rows of im2col, 720 output positions: chunks of output rows
  c.N = 2, c.C = 256, c.M = 9, c.in = {24, 30}, c.k = {3, 3}, c.s = {1, 1}, c.d = {1, 1};
  c.pads = {1, 1, 1, 1};
  check_conv_case(c, rng, 0);
  c.fixed = false;
  c.sum = true;
  check_conv_case(c, rng, 0);
  ConvCase w;  // long output rows (>= 16: copied row by row) with strides, dilation and padding
  w.N = 3, w.C = 6, w.M = 5, w.in = {9, 40}, w.k = {3, 3}, w.s = {2, 2}, w.d = {2, 1};
  w.pads = {2, 1, 0, 3};
  check_conv_case(w, rng, 0);
  w.s = {1, 1}, w.xt = DType::I8, w.sum = true;
  check_conv_case(w, rng, 0);
  ConvCase b;  // small outputs, many images: images side by side in one GEMM
  b.N = 37, b.C = 5, b.M = 6, b.in = {3, 4}, b.k = {2, 2}, b.s = {1, 2}, b.d = {1, 1};
  b.pads = {0, 1, 1, 0};
  b.xt = DType::I8;
  check_conv_case(b, rng, 0);
  b.group = 5, b.C = 5, b.M = 10;  // depthwise with multiplier 2
  check_conv_case(b, rng, 0);
}

// ---- NhwcQConv (backends/x86): channels-last, bit-exact with the naive loop

// The values of an [N, C, S] tensor (NCHW order) in NHWC order, or back (to_nhwc = false).
std::vector<int32_t> transpose_vals(const std::vector<int32_t>& v, int64_t N, int64_t C, int64_t S,
                                    bool to_nhwc) {
  std::vector<int32_t> r(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < S; ++p) {
        const size_t nchw = size_t((n * C + c) * S + p), nhwc = size_t((n * S + p) * C + c);
        r[to_nhwc ? nhwc : nchw] = v[to_nhwc ? nchw : nhwc];
      }
  return r;
}

// Runs NhwcQConv on the case (x and sum transposed to NHWC); returns the number of outputs that
// differ from the naive loop.
int64_t nhwc_mismatches(const ConvCase& c, const ConvData& D, int vec1) {
  const std::vector<int32_t> want = naive_conv(c, D, false);
  std::vector<Tensor> in = conv_inputs(c, D, vec1);
  const int64_t H = c.in[0], W = c.in[1], OH = D.out[0], OW = D.out[1];
  in[0] = ints(c.xt, {c.N, H, W, c.C}, transpose_vals(D.x, c.N, c.C, H * W, true));
  if (c.sum) in[9] = ints(c.st, {c.N, OH, OW, c.M}, transpose_vals(D.sum, c.N, c.M, OH * OW, true));
  const Tensor y =
      run_node(engine_registry(), qconv_node(conv_attrs(c, D, true), "NhwcQConv"), in)[0];
  REQUIRE(y.dtype() == c.yt);
  REQUIRE(y.shape() == Dims({c.N, OH, OW, c.M}));
  const std::vector<int32_t> got = transpose_vals(values(y), c.N, c.M, OH * OW, false);
  int64_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) bad += got[i] != want[i];
  return bad;
}

// 2-D, int8 weights without zero points, group 1 or depthwise: what the lowering hands NhwcQConv.
ConvCase random_nhwc_case(std::mt19937& rng, int i) {
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  const int64_t chans[] = {1, 3, 4, 7, 8, 17, 33, 64, 70};
  ConvCase c;
  c.N = pick(1, 3);
  const bool dw = i % 3 == 2;
  c.C = chans[rng() % 9];
  c.M = dw ? c.C : chans[rng() % 9];
  c.group = dw ? c.C : 1;
  const bool one = i % 5 == 0;  // 1x1, stride 1, no padding: the direct GEMM rows when possible
  for (int a = 0; a < 2; ++a) {
    c.k.push_back(one ? 1 : pick(1, dw ? 5 : 3));
    c.s.push_back(one ? 1 : pick(1, 2));
    c.d.push_back(one ? 1 : pick(1, 2));
    c.in.push_back(pick((c.k.back() - 1) * c.d.back() + 1, 11));
  }
  for (int a = 0; a < 4; ++a) c.pads.push_back(one ? 0 : pick(0, 2));
  c.xt = rng() % 2 ? DType::U8 : DType::I8;
  random_quant_options(c, rng, i);
  return c;
}

ConvData nhwc_data(const ConvCase& c, std::mt19937& rng) {
  ConvData D = make_conv_data(c, rng);
  std::fill(D.wzp.begin(), D.wzp.end(), 0);
  return D;
}

}  // namespace

TEST_CASE("NhwcQConv is bit-exact with the naive loop: random 2-D shapes on every ISA level") {
  for_each_isa([] {
    std::mt19937 rng(4242);
    for (int i = 0; i < 120; ++i) {
      const ConvCase c = random_nhwc_case(rng, i);
      INFO(case_str(c));
      const ConvData D = nhwc_data(c, rng);
      CHECK(nhwc_mismatches(c, D, int(rng() % 8)) == 0);
    }
  });
}

TEST_CASE("NhwcQConv saturation: K = 4608, all-255 inputs x all-127 weights, extreme zero points") {
  for_each_isa([] {
    std::mt19937 rng(7);
    ConvCase c;  // resnet50's largest 3x3: 512 channels -> K = 4608
    c.N = 1, c.C = 512, c.M = 40, c.in = {5, 6}, c.k = {3, 3}, c.s = {1, 1}, c.d = {1, 1};
    c.pads = {1, 1, 1, 1};
    for (DType xt : {DType::U8, DType::I8})
      for (int variant = 0; variant < 3; ++variant) {
        c.xt = xt;
        c.sum = variant == 2;
        c.fixed = variant != 1;
        ConvData D = nhwc_data(c, rng);
        const int32_t hi = qmax_of(xt), lo = qmin_of(xt);
        // Largest products: x at the top of its range, zero point at the bottom, weights 127
        // (variant 1: weights -128, zero point at the top).
        std::fill(D.x.begin(), D.x.end(), variant == 1 ? lo : hi);
        D.xzp = variant == 1 ? hi : lo;
        std::fill(D.w.begin(), D.w.end(), variant == 1 ? -128 : 127);
        // Half the outputs saturate, half do not: scales spread over the channels.
        for (size_t m = 0; m < D.ws.size(); ++m) D.ws[m] = 1e-6f * float(1 + m * m);
        INFO("x ", dtype_name(xt), " variant ", variant);
        CHECK(nhwc_mismatches(c, D, 4) == 0);
      }
  });
}

TEST_CASE("NhwcQConv residual sums on both sides of the sum-term table's limits") {
  // With AVX-512 VBMI, fixed-mode sums come from a table (ChannelLanes::sum_lut) when every term
  // fits in int16 and every conv multiplier is below 1/2; else the 64-bit path. Both must equal
  // the naive loop: sum multipliers of 128 (terms up to 32640) and 129 (32895), a channel
  // multiplier of 0.45 and of 0.7, u8 and i8 sums at their extreme zero points.
  for_each_isa([] {
    std::mt19937 rng(12);
    ConvCase c;  // 1x1 on 48 pixels, 64 + 16 channels: full 6 x 64 tiles and a 16-wide panel
    c.N = 2, c.C = 24, c.M = 80, c.in = {4, 6}, c.k = {1, 1}, c.s = {1, 1}, c.d = {1, 1};
    c.pads = {0, 0, 0, 0};
    c.sum = true;
    for (DType st : {DType::U8, DType::I8})
      for (double sum_m : {128.0, 129.0})
        for (double big : {0.45, 0.7}) {
          c.st = st;
          c.yt = st;
          ConvData D = nhwc_data(c, rng);
          D.ss = float(sum_m) * D.ys;
          D.szp = st == DType::U8 ? 0 : 127;
          // Channel 5's multiplier xs * ws / ys = big (others stay small).
          D.ws[5] = float(big) * D.ys / D.xs;
          INFO("sum ", dtype_name(st), " sum multiplier ", sum_m, " channel multiplier ", big);
          CHECK(nhwc_mismatches(c, D, 2) == 0);
        }
  });
}

TEST_CASE("NhwcQConv output panels of 16 to 64 channels in every requantization form") {
  // The micro-kernels that requantize their registers: panels of 1-4 vectors of 16 channels,
  // float and fixed mode, with and without a residual sum, clamped to the output type by the
  // packs or to a narrower range, output zero points >= 0 (the lean fixed form) and < 0.
  for_each_isa([] {
    std::mt19937 rng(21);
    int i = 0;
    for (int64_t M : {16, 32, 48, 112})
      for (int form = 0; form < 8; ++form) {
        ConvCase c;
        c.N = 2, c.C = 20, c.M = M, c.in = {3, 5}, c.k = {1, 1}, c.s = {1, 1}, c.d = {1, 1};
        c.pads = {0, 0, 0, 0};
        c.fixed = form % 2 == 0;
        c.sum = form / 2 % 2 == 1;
        c.clamp = form / 4 == 1;
        c.yt = i % 3 == 2 ? DType::I8 : DType::U8;
        c.st = i % 2 ? DType::I8 : DType::U8;
        ++i;
        INFO(case_str(c));
        ConvData D = nhwc_data(c, rng);
        if (c.yt == DType::I8) D.yzp = i % 2 ? -30 : 40;
        if (c.clamp) D.lo = D.yzp - 3, D.hi = D.yzp + 20;
        CHECK(nhwc_mismatches(c, D, 1) == 0);
      }
  });
}

TEST_CASE("NhwcQConv row taps (C not a multiple of 4): stems, borders, the end of x") {
  // One pointer per kernel row reading KW * C rounded up to 4 bytes: the 7x7 / stride-2 stem of
  // the resnets (21 -> 24 bytes), mobilenet_v2's 3x3 stem (9 -> 12), one channel (3 -> 4), a
  // kernel as wide as the input, asymmetric padding, rows ending at the last byte of x, and an
  // x of 3 bytes (shorter than one 4-byte row read).
  for_each_isa([] {
    std::mt19937 rng(99);
    struct Shape {
      int64_t N, C, M, H, W, k, s, pad_l, pad_r;
    };
    for (const Shape& sh :
         {Shape{2, 3, 64, 29, 31, 7, 2, 3, 3}, Shape{1, 3, 32, 20, 22, 3, 2, 1, 1},
          Shape{3, 1, 16, 9, 7, 3, 1, 0, 0}, Shape{1, 5, 20, 6, 5, 5, 1, 2, 0},
          Shape{2, 3, 8, 4, 4, 4, 1, 0, 3}, Shape{1, 3, 4, 1, 1, 1, 1, 0, 0}})
      for (int variant = 0; variant < 2; ++variant) {
        ConvCase c;
        c.N = sh.N, c.C = sh.C, c.M = sh.M, c.in = {sh.H, sh.W}, c.k = {sh.k, sh.k};
        c.s = {sh.s, sh.s}, c.d = {1 + variant, 1};  // dilation in y only
        c.pads = {sh.pad_l, sh.pad_l, sh.pad_r, sh.pad_r};
        c.xt = DType::U8;
        c.sum = variant == 1;
        if ((sh.k - 1) * c.d[0] + 1 > sh.H + sh.pad_l + sh.pad_r) continue;  // no output rows
        INFO(case_str(c));
        const ConvData D = nhwc_data(c, rng);
        CHECK(nhwc_mismatches(c, D, 3) == 0);
      }
  });
}

TEST_CASE("NhwcQConv depthwise 3x3: four-pixel groups, strides 1 and 2, borders, channel tails") {
  // The AVX-512 VNNI path computes interior pixels of full 16-channel blocks four at a time
  // (group4) and the rest one at a time: widths around multiples of four, both strides, with and
  // without padding, 16-channel blocks with and without a tail; extreme values included.
  for_each_isa([] {
    std::mt19937 rng(31);
    int i = 0;
    for (int64_t C : {16, 40, 69})
      for (int64_t W : {4, 6, 9, 13, 20})
        for (int64_t s : {1, 2})
          for (int64_t pad : {0, 1}) {
            ConvCase c;
            c.N = 1 + i % 2, c.C = C, c.M = C, c.group = C, c.in = {3 + i % 3, W};
            c.k = {3, 3}, c.s = {s, s}, c.d = {1, 1};
            c.pads = {pad, pad, i % 3 == 0 ? 0 : pad, pad};
            c.xt = i % 2 ? DType::I8 : DType::U8;
            random_quant_options(c, rng, i);
            if (W + 2 * pad < 3) continue;
            INFO(case_str(c));
            ConvData D = nhwc_data(c, rng);
            if (i % 4 == 3) {  // the largest products: x at one end of its range, weights -128
              std::fill(D.x.begin(), D.x.end(), qmax_of(c.xt));
              std::fill(D.w.begin(), D.w.end(), -128);
            }
            CHECK(nhwc_mismatches(c, D, int(rng() % 8)) == 0);
            ++i;
          }
  });
}

TEST_CASE("QConv: random shapes vs a naive loop, fixed and float requantization") {
  for_each_isa([] {
    std::mt19937 rng(2024);
    for (int i = 0; i < 160; ++i) check_conv_case(random_conv_case(rng, i), rng, int(rng() % 8));
  });
}

TEST_CASE("QConv: large inputs (chunked im2col rows, several images per GEMM)") {
  for_each_isa([] { check_large_convs(); });
}

TEST_CASE("QConv: out_min / out_max clamp, per-tensor weights, scale_bits") {
  // x = 1..4 (zp 0), w = 1 (2x2 kernel): acc = 10; M = 0.5 * 1 / 1 -> 5; + y_zp 3 = 8.
  auto run = [](int64_t lo, int64_t hi, const std::string& mode, int64_t bits = 31) {
    Attributes a;
    a.set("requant", mode);
    a.set("scale_bits", bits);
    if (lo >= 0) a.set("out_min", lo);
    if (hi >= 0) a.set("out_max", hi);
    const std::vector<Tensor> in = {ints(DType::U8, {1, 1, 2, 2}, {1, 2, 3, 4}),
                                    Tensor::scalar(0.5f),
                                    ints(DType::U8, {}, {0}),
                                    ints(DType::I8, {1, 1, 2, 2}, {1, 1, 1, 1}),
                                    Tensor::scalar(1.0f),
                                    ints(DType::I8, {}, {0}),
                                    Tensor::scalar(1.0f),
                                    ints(DType::U8, {}, {3})};
    return values(run_node(qreg(), qconv_node(a), in)[0]).at(0);
  };
  CHECK(run(-1, -1, "fixed") == 8);
  CHECK(run(-1, -1, "float") == 8);
  CHECK(run(0, 6, "fixed") == 6);
  CHECK(run(0, 6, "float") == 6);
  CHECK(run(9, 200, "fixed") == 9);
  CHECK(run(9, 200, "float") == 9);
  CHECK(run(-1, -1, "fixed", 1) == 8);  // 0.5 is exact with one bit
  // Omitted x / w zero points are 0.
  const Tensor y =
      run_node(qreg(), qconv_node({}),
               {ints(DType::U8, {1, 1, 2, 2}, {1, 2, 3, 4}), Tensor::scalar(0.5f), Tensor(),
                ints(DType::I8, {1, 1, 2, 2}, {1, 1, 1, 1}), Tensor::scalar(1.0f), Tensor(),
                Tensor::scalar(1.0f), ints(DType::U8, {}, {3})})[0];
  CHECK(values(y) == std::vector<int32_t>{8});
}

TEST_CASE("QLinearConv equals QConv in float mode; ConvInteger vs naive") {
  for_each_isa([] {
    std::mt19937 rng(99);
    for (int i = 0; i < 40; ++i) {
      ConvCase c = random_conv_case(rng, 2 * i + 1);  // odd: float mode
      c.sum = false;
      c.clamp = false;
      INFO(case_str(c));
      const ConvData D = make_conv_data(c, rng);
      const std::vector<Tensor> in = conv_inputs(c, D, int(rng() % 8));
      const Tensor a = run_node(qreg(), qconv_node(conv_attrs(c, D, true)), in)[0];
      const Tensor b =
          run_node(qreg(), qconv_node(conv_attrs(c, D, false), "QLinearConv", ""), in)[0];
      CHECK(values(a) == values(b));
      CHECK(values(b) == naive_conv(c, D, false));
      // ConvInteger: x, w, x_zp, w_zp -> int32 without bias.
      c.bias = false;
      const std::vector<Tensor> ci = {in[0], in[3], in[2], in[5]};
      const Tensor y =
          run_node(qreg(), qconv_node(conv_attrs(c, D, false), "ConvInteger", ""), ci)[0];
      REQUIRE(y.dtype() == DType::I32);
      CHECK(values(y) == naive_conv(c, D, true));
    }
  });
  // Omitted zero points are 0.
  const Tensor y = run_node(
      qreg(), qconv_node({}, "ConvInteger", ""),
      {ints(DType::U8, {1, 1, 2, 2}, {1, 2, 3, 250}), ints(DType::I8, {1, 1, 1, 1}, {-3})})[0];
  CHECK(values(y) == std::vector<int32_t>{-3, -6, -9, -750});
}

TEST_CASE("QConv: auto_pad SAME_UPPER equals explicit pads") {
  std::mt19937 rng(5);
  ConvCase c;
  c.N = 2, c.C = 3, c.M = 4, c.in = {5, 6}, c.k = {3, 2}, c.s = {2, 1}, c.d = {1, 1};
  // SAME_UPPER: out = ceil(in / s) = {3, 6}; total pad = (out - 1) * s + k - in = {2, 1}, split
  // begin {1, 0}, end {1, 1} (the extra one at the end).
  c.pads = {1, 0, 1, 1};
  const ConvData D = make_conv_data(c, rng);
  Attributes a = conv_attrs(c, D, true);
  a.erase("pads");
  a.set("auto_pad", std::string("SAME_UPPER"));
  const Tensor y = run_node(qreg(), qconv_node(a), conv_inputs(c, D, 0))[0];
  CHECK(values(y) == naive_conv(c, D, false));
}

TEST_CASE("QConv / QLinearConv: input validation messages") {
  auto err = [](const std::string& op, const std::vector<Tensor>& in) -> std::string {
    try {
      run_node(qreg(), qconv_node({}, op, op == "QConv" ? "engine" : ""), in);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const Tensor x = ints(DType::U8, {1, 2, 3, 3}, std::vector<int32_t>(18, 1));
  const Tensor w = ints(DType::I8, {4, 2, 1, 1}, std::vector<int32_t>(8, 1));
  const Tensor s = Tensor::scalar(0.1f);
  const Tensor zu = ints(DType::U8, {}, {0}), zi = ints(DType::I8, {}, {0});
  CHECK(err("QConv", {x, s, zi, w, s, zi, s, zu}) ==
        "QConv: x_zero_point must have the dtype of x (uint8), got int8");
  CHECK(err("QConv", {x, s, zu, w, s, zu, s, zu}) ==
        "QConv: w_zero_point must have the dtype of w (int8), got uint8");
  CHECK(err("QConv", {x, s, zu, w, Tensor::from_vector<float>({3}, {1, 1, 1}), zi, s, zu}) ==
        "QConv: w_scale must be a scalar or have shape [4] (one per output channel), got shape "
        "[3]");
  CHECK(err("QConv", {x, Tensor::from_vector<float>({2}, {1, 1}), zu, w, s, zi, s, zu}) ==
        "QConv: x_scale must be a scalar (per-tensor), got shape [2]");
  CHECK(err("QConv", {x, s, zu, w, s, zi, s, zu, ints(DType::I32, {3}, {1, 2, 3})}) ==
        "QConv: bias must be int32 with shape [4] (one per output channel), got int32 [3]");
  CHECK(err("QLinearConv", {x, s, zu, w, s, zi, s, ints(DType::I32, {}, {0})}) ==
        "QLinearConv: y_zero_point must be uint8 or int8 (it gives the output type), got int32");
  CHECK(err("QConv", {x, s, zu, w, s, zi, s, zu, Tensor(), x, s, zu})
            .find("sum must have the output shape [1,4,3,3]") != std::string::npos);
  CHECK(err("QConv", {x, s, zu, w, s, zi, Tensor::scalar(0.0f), zu}) ==
        "QConv: y_scale must be positive and finite, got 0");
  // The output type is the type of y_zero_point.
  const Tensor y = run_node(qreg(), qconv_node({}), {x, s, zu, w, s, zi, s, zi})[0];
  CHECK(y.dtype() == DType::I8);
  Attributes bad;
  bad.set("out_min", int64_t(-5));
  CHECK_THROWS_WITH_AS(run_node(qreg(), qconv_node(bad), {x, s, zu, w, s, zi, s, zu}),
                       "attributes out_min=-5 / out_max=255 must satisfy 0 <= out_min <= out_max "
                       "<= 255 for output type uint8",
                       Error);
  Attributes mode;
  mode.set("requant", std::string("double"));
  CHECK_THROWS_AS(run_node(qreg(), qconv_node(mode), {x, s, zu, w, s, zi, s, zu}), Error);
}

// Seconds per run of one QConv (after a warm-up run).
double time_qconv(const ConvCase& c, const std::string& mode, int reps) {
  std::mt19937 rng(1);
  const ConvData D = make_conv_data(c, rng);
  const std::vector<Tensor> in = conv_inputs(c, D, 0);
  Attributes a = conv_attrs(c, D, true);
  a.set("requant", mode);
  run_node(qreg(), qconv_node(a), in);
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) run_node(qreg(), qconv_node(a), in);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

ConvCase conv3x3(int64_t N, int64_t C, int64_t M, int64_t hw, int64_t stride, int64_t k = 3) {
  ConvCase c;
  c.N = N, c.C = C, c.M = M, c.in = {hw, hw}, c.k = {k, k}, c.s = {stride, stride};
  c.d = {1, 1};
  c.pads = Ints(4, k / 2);
  return c;
}

TEST_CASE("QConv timing (run with --no-skip)" * doctest::skip()) {
  for (const std::string mode : {"float", "fixed", "float", "fixed"}) {
    const double sec = time_qconv(conv3x3(64, 64, 64, 32, 1), mode, 5);
    MESSAGE("QConv 64x64x3x3 32x32 batch 64, ", mode, ": ", sec * 1e3, " ms, ",
            64.0 * 64 * 9 * 1024 * 64 / sec / 1e9, " GMAC/s");
  }
  // The convolutions of a CIFAR-style ResNet-18 (32x32 input, 3x3 stem, no max pool), batch 100.
  struct Layer {
    int64_t C, M, hw, stride, k, count;
  };
  const Layer net[] = {{3, 64, 32, 1, 3, 1},    {64, 64, 32, 1, 3, 4},   {64, 128, 32, 2, 3, 1},
                       {128, 128, 16, 1, 3, 3}, {64, 128, 32, 2, 1, 1},  {128, 256, 16, 2, 3, 1},
                       {256, 256, 8, 1, 3, 3},  {128, 256, 16, 2, 1, 1}, {256, 512, 8, 2, 3, 1},
                       {512, 512, 4, 1, 3, 3},  {256, 512, 8, 2, 1, 1}};
  double total = 0;
  for (const Layer& l : net) {
    const double sec = time_qconv(conv3x3(100, l.C, l.M, l.hw, l.stride, l.k), "fixed", 1);
    total += sec * double(l.count);
  }
  MESSAGE("ResNet-18 (CIFAR) convolutions, batch 100, fixed: ", total, " s");
  // Depthwise 3x3, 256 channels, 16x16, batch 64.
  ConvCase dw = conv3x3(64, 256, 256, 16, 1);
  dw.group = 256;
  MESSAGE("QConv depthwise 256x3x3 16x16 batch 64: ", time_qconv(dw, "fixed", 3) * 1e3, " ms");
}

// ------------------------------------------------------------------ matrix products

struct GemmData {
  int64_t M, N, K;
  bool trans_b, per_col, bias, fixed, clamp;
  int bits = 31;
  DType at, bt, yt;
  std::vector<int32_t> a, b, bzp, biasv;
  int32_t azp, yzp, lo, hi;
  float as, ys;
  std::vector<float> bs;
};

GemmData random_gemm(std::mt19937& rng, int i) {
  GemmData g;
  g.M = 1 + int64_t(rng() % 20);
  g.N = 1 + int64_t(rng() % 20);
  g.K = 1 + int64_t(rng() % 70);
  g.trans_b = rng() % 2;
  g.per_col = rng() % 3 != 0;
  g.bias = rng() % 2;
  g.fixed = i % 2 == 0;
  g.clamp = rng() % 4 == 0;
  g.bits = i % 8 == 4 ? 10 : 31;
  g.at = rng() % 2 ? DType::U8 : DType::I8;
  g.bt = rng() % 4 ? DType::I8 : DType::U8;
  g.yt = rng() % 2 ? DType::U8 : DType::I8;
  g.a = rand_ints(rng, size_t(g.M * g.K), qmin_of(g.at), qmax_of(g.at));
  g.b = rand_ints(rng, size_t(g.K * g.N), qmin_of(g.bt), qmax_of(g.bt));
  g.azp = rand_ints(rng, 1, qmin_of(g.at), qmax_of(g.at))[0];
  g.bzp = rand_ints(rng, g.per_col ? size_t(g.N) : 1, qmin_of(g.bt), qmax_of(g.bt));
  if (g.bias) g.biasv = rand_ints(rng, size_t(g.N), -5000, 5000);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  g.as = 0.03f * u(rng);
  for (int64_t n = 0; n < (g.per_col ? g.N : 1); ++n) g.bs.push_back(0.01f * u(rng));
  g.ys = g.as * g.bs[0] * 80.0f * std::sqrt(float(g.K)) * u(rng);
  g.yzp = rand_ints(rng, 1, qmin_of(g.yt) + 10, qmax_of(g.yt) - 10)[0];
  g.lo = qmin_of(g.yt);
  g.hi = qmax_of(g.yt);
  if (g.clamp) g.lo = g.yzp - 5, g.hi = std::min(g.yzp + 30, g.hi);
  return g;
}

// b[k, n] of the logical [K, N] matrix (stored [N, K] when trans_b).
int32_t b_at(const GemmData& g, int64_t k, int64_t n) {
  return g.b[size_t(g.trans_b ? n * g.K + k : k * g.N + n)];
}

std::vector<int32_t> naive_gemm(const GemmData& g, bool integer_only) {
  Requant rq{g.fixed, g.bits, g.lo, g.hi, g.yzp};
  std::vector<int32_t> y;
  for (int64_t m = 0; m < g.M; ++m)
    for (int64_t n = 0; n < g.N; ++n) {
      const size_t c = g.per_col ? size_t(n) : 0;
      int64_t acc = 0;
      for (int64_t k = 0; k < g.K; ++k)
        acc += int64_t(g.a[size_t(m * g.K + k)] - g.azp) * (b_at(g, k, n) - g.bzp[c]);
      if (g.bias) acc += g.biasv[size_t(n)];
      y.push_back(integer_only ? int32_t(acc) : rq(int32_t(acc), g.as, g.bs[c], g.ys));
    }
  return y;
}

std::vector<Tensor> gemm_inputs(const GemmData& g) {
  const Dims bshape = g.trans_b ? Dims{g.N, g.K} : Dims{g.K, g.N};
  return {ints(g.at, {g.M, g.K}, g.a),
          qparam_f({g.as}, false),
          qparam_i(g.at, {g.azp}, false),
          ints(g.bt, bshape, g.b),
          qparam_f(g.bs, false),
          qparam_i(g.bt, g.bzp, false),
          qparam_f({g.ys}, true),
          qparam_i(g.yt, {g.yzp}, false),
          g.bias ? ints(DType::I32, {g.N}, g.biasv) : Tensor()};
}

namespace {

void check_random_gemms() {
  std::mt19937 rng(31);
  for (int i = 0; i < 200; ++i) {
    const GemmData g = random_gemm(rng, i);
    INFO("M=", g.M, " N=", g.N, " K=", g.K, " transB=", g.trans_b, " per_col=", g.per_col,
         " fixed=", g.fixed, " bits=", g.bits);
    NodeSpec s;
    s.op_type = "QGemm";
    s.domain = "engine";
    s.attrs.set("transB", int64_t(g.trans_b));
    s.attrs.set("requant", std::string(g.fixed ? "fixed" : "float"));
    s.attrs.set("scale_bits", int64_t(g.bits));
    if (g.clamp) {
      s.attrs.set("out_min", int64_t(g.lo));
      s.attrs.set("out_max", int64_t(g.hi));
    }
    const Tensor y = run_node(qreg(), s, gemm_inputs(g))[0];
    REQUIRE(y.dtype() == g.yt);
    REQUIRE(y.shape() == Dims{g.M, g.N});
    CHECK(values(y) == naive_gemm(g, false));
  }
}

}  // namespace

TEST_CASE("QGemm: random shapes vs a naive loop") {
  for_each_isa([] { check_random_gemms(); });
}

TEST_CASE("QLinearMatMul and MatMulInteger: batched N-D shapes vs a naive loop") {
  std::mt19937 rng(41);
  struct Shapes {
    Dims a, b, y;
  };
  const Shapes shapes[] = {{{2, 3, 5}, {5, 4}, {2, 3, 4}},
                           {{3, 5}, {2, 5, 4}, {2, 3, 4}},
                           {{2, 1, 3, 5}, {3, 5, 2}, {2, 3, 3, 2}},
                           {{5}, {5, 4}, {4}},
                           {{3, 5}, {5}, {3}},
                           {{4, 2, 6}, {4, 6, 3}, {4, 2, 3}}};
  for (const Shapes& sh : shapes) {
    INFO("a ", dims_str(sh.a), " b ", dims_str(sh.b));
    // The ONNX-shaped inputs hold a stack of 2-D problems; compute each with the naive GEMM.
    const Dims am = sh.a.size() == 1 ? Dims{1, sh.a[0]} : sh.a;
    const Dims bm = sh.b.size() == 1 ? Dims{sh.b[0], 1} : sh.b;
    const int64_t M = am[am.size() - 2], K = am.back(), N = bm.back();
    const DType at = rng() % 2 ? DType::U8 : DType::I8, bt = rng() % 2 ? DType::U8 : DType::I8;
    const std::vector<int32_t> a =
        rand_ints(rng, size_t(checked_numel(sh.a)), qmin_of(at), qmax_of(at));
    const std::vector<int32_t> b =
        rand_ints(rng, size_t(checked_numel(sh.b)), qmin_of(bt), qmax_of(bt));
    const int32_t azp = rand_ints(rng, 1, qmin_of(at), qmax_of(at))[0];
    const std::vector<int32_t> bzp = rand_ints(rng, size_t(N), qmin_of(bt), qmax_of(bt));
    std::vector<float> bs(static_cast<size_t>(N));
    for (float& v : bs) v = 0.001f * float(1 + rng() % 20);
    const float as = 0.02f, ys = 0.3f;
    // Batch b of the output reads matrix (b mod count) of a and of b (the broadcast here always
    // repeats a whole operand or matches it, so a modulo gives the index).
    const int64_t nb = checked_numel(sh.y) / (M * N);
    const int64_t na = checked_numel(sh.a) / (M * K), nbm = checked_numel(sh.b) / (K * N);
    std::vector<int32_t> want_int, want_q;
    Requant rq{false, 31, qmin_of(DType::U8), qmax_of(DType::U8), 100};
    for (int64_t bi = 0; bi < nb; ++bi) {
      const int64_t ia = sh.a.size() == 4 ? bi / 3 : bi % na;  // [2,1,3,5] x [3,5,2]
      const int64_t ib = bi % nbm;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          int64_t acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc += int64_t(a[size_t((ia * M + m) * K + k)] - azp) *
                   (b[size_t((ib * K + k) * N + n)] - bzp[size_t(n)]);
          want_int.push_back(int32_t(acc));
          want_q.push_back(rq(int32_t(acc), as, bs[size_t(n)], ys));
        }
    }
    NodeSpec mi;
    mi.op_type = "MatMulInteger";
    const Tensor yi = run_node(
        qreg(), mi,
        {ints(at, sh.a, a), ints(bt, sh.b, b), ints(at, {}, {azp}), ints(bt, {N}, bzp)})[0];
    REQUIRE(yi.shape() == sh.y);
    REQUIRE(yi.dtype() == DType::I32);
    CHECK(values(yi) == want_int);
    NodeSpec ql;
    ql.op_type = "QLinearMatMul";
    const Tensor yq =
        run_node(qreg(), ql,
                 {ints(at, sh.a, a), Tensor::scalar(as), ints(at, {}, {azp}), ints(bt, sh.b, b),
                  Tensor::from_vector(Dims{N}, bs), ints(bt, {N}, bzp), Tensor::scalar(ys),
                  ints(DType::U8, {1}, {100})})[0];
    REQUIRE(yq.shape() == sh.y);
    CHECK(values(yq) == want_q);
  }
}

TEST_CASE("QGemm / QLinearMatMul: validation messages") {
  const Tensor a = ints(DType::U8, {2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = ints(DType::I8, {3, 4}, std::vector<int32_t>(12, 1));
  const Tensor s = Tensor::scalar(0.1f);
  const Tensor zu = ints(DType::U8, {}, {0}), zi = ints(DType::I8, {}, {0});
  NodeSpec g;
  g.op_type = "QGemm";
  g.domain = "engine";
  CHECK_THROWS_WITH_AS(
      run_node(qreg(), g, {a, s, zu, b, s, zi, s, zu, ints(DType::I32, {3}, {1, 2, 3})}),
      "QGemm: bias must be int32 with shape [4] (one per output column), got "
      "int32 [3]",
      Error);
  CHECK_THROWS_WITH_AS(
      run_node(qreg(), g, {a, s, zu, b, Tensor::from_vector<float>({2}, {1, 1}), zi, s, zu}),
      "QGemm: b_scale must be a scalar or have shape [4] (one per output column), "
      "got shape [2]",
      Error);
  g.attrs.set("transB", int64_t(1));
  CHECK_THROWS_WITH_AS(run_node(qreg(), g, {a, s, zu, b, s, zi, s, zu}),
                       "QGemm: inner dimensions do not match: a [2,3] has K=3 but b [3,4] "
                       "(transB=1) has K=4",
                       Error);
  NodeSpec q;
  q.op_type = "QLinearMatMul";
  CHECK_THROWS_WITH_AS(
      run_node(qreg(), q, {a, Tensor::from_vector<float>({2}, {1, 1}), zu, b, s, zi, s, zu}),
      "QLinearMatMul: a_scale must be a scalar (per-tensor), got shape [2]", Error);
  CHECK_THROWS_WITH_AS(run_node(qreg(), q, {a, s, zi, b, s, zi, s, zu}),
                       "QLinearMatMul: a_zero_point must have the dtype of a (uint8), got int8",
                       Error);
}

// ------------------------------------------------------------------ Quantize / Dequantize

TEST_CASE("QuantizeLinear / DequantizeLinear: per tensor, per axis, types") {
  NodeSpec q;
  q.op_type = "QuantizeLinear";
  // Default output uint8; ties to even; saturation.
  Tensor y = run_node(
      qreg(), q,
      {Tensor::from_vector<float>({6}, {0, 1, 2.5, 3, -1, 1000}), Tensor::scalar(1.0f)})[0];
  CHECK(y.dtype() == DType::U8);
  CHECK(values(y) == std::vector<int32_t>{0, 1, 2, 3, 0, 255});
  // int8 with a zero point: x / 0.5 + (-3)
  y = run_node(qreg(), q,
               {Tensor::from_vector<float>({5}, {0.25f, 0.75f, -100.0f, 70.0f, 1.0f}),
                Tensor::scalar(0.5f), ints(DType::I8, {}, {-3})})[0];
  CHECK(y.dtype() == DType::I8);
  CHECK(values(y) == std::vector<int32_t>{-3, -1, -128, 127, -1});
  // Per axis 1 of [2, 3, 2]: scales {1, 2, 4}, zero points {0, 10, 20}.
  std::vector<float> x(12);
  for (size_t i = 0; i < 12; ++i) x[i] = float(i) * 3.0f;
  const Tensor sc = Tensor::from_vector<float>({3}, {1, 2, 4});
  const Tensor zp = ints(DType::U8, {3}, {0, 10, 20});
  y = run_node(qreg(), q, {Tensor::from_vector({2, 3, 2}, x), sc, zp})[0];
  // x[n, c, j] / s[c] + zp[c], ties to even: n=0: 0, 3 | 3+10, 4.5->4 +10 | 3+20, 3.75->4 +20;
  // n=1: 18, 21 | 12+10, 13.5->14 +10 | 7.5->8 +20, 8.25->8 +20
  CHECK(values(y) == std::vector<int32_t>{0, 3, 13, 14, 23, 24, 18, 21, 22, 24, 28, 28});
  // axis = -1 of [2, 3]
  q.attrs.set("axis", int64_t(-1));
  y = run_node(qreg(), q, {Tensor::from_vector<float>({2, 3}, {1, 1, 1, 2, 2, 2}), sc, zp})[0];
  CHECK(values(y) == std::vector<int32_t>{1, 10, 20, 2, 11, 20});

  NodeSpec dq;
  dq.op_type = "DequantizeLinear";
  // (q - zp[c]) * s[c] on axis 1 (the default).
  const std::vector<int32_t> qv{0, 3, 13, 14, 23, 24, 18, 21, 22, 24, 28, 28};
  Tensor f = run_node(qreg(), dq, {ints(DType::U8, {2, 3, 2}, qv), sc, zp})[0];
  CHECK(f.to_float_vector() == std::vector<float>{0, 3, 6, 8, 12, 16, 18, 21, 24, 28, 32, 32});
  f = run_node(qreg(), dq, {ints(DType::I32, {3}, {-1000000, 0, 7}), Tensor::scalar(0.5f)})[0];
  CHECK(f.to_float_vector() == std::vector<float>{-500000.0f, 0.0f, 3.5f});
  f = run_node(
      qreg(), dq,
      {ints(DType::I8, {3}, {-128, 0, 127}), Tensor::scalar(0.25f), ints(DType::I8, {}, {-1})})[0];
  CHECK(f.to_float_vector() == std::vector<float>{-31.75f, 0.25f, 32.0f});
  // Errors.
  CHECK_THROWS_WITH_AS(
      run_node(qreg(), dq,
               {ints(DType::U8, {3}, {1, 2, 3}), Tensor::scalar(1.0f), ints(DType::I8, {}, {0})}),
      "DequantizeLinear: x_zero_point must have the dtype of x (uint8), got int8", Error);
  CHECK_THROWS_AS(
      run_node(qreg(), dq,
               {ints(DType::I32, {1}, {5}), Tensor::scalar(1.0f), ints(DType::I32, {}, {2})}),
      Error);  // int32 requires zero point 0
  CHECK_THROWS_AS(run_node(qreg(), q, {Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4}), sc, zp}),
                  Error);  // 3 scales for an axis of size 2
  NodeSpec q10 = q;
  q10.opset = 10;
  q10.attrs = {};
  CHECK_THROWS_AS(
      run_node(qreg(), q10, {Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}), sc, zp}),
      Error);  // per-axis needs opset 13
}

TEST_CASE("QuantizeLinear: the SIMD path equals quantize_value on ties, NaN, inf and tails") {
  for_each_isa([] {
    std::mt19937 rng(31);
    std::uniform_real_distribution<float> u(-300.0f, 300.0f);
    for (int64_t n : {1, 7, 8, 9, 100003}) {
      for (DType t : {DType::U8, DType::I8}) {
        const float scale = 0.37f;
        const int32_t zp = t == DType::U8 ? 131 : -5;
        Tensor x(DType::F32, {n});
        float* xv = x.data<float>();
        for (int64_t i = 0; i < n; ++i) {
          switch (i % 6) {
            case 0:  // exact ties of x / scale: k + 0.5
              xv[i] = (float(int(rng() % 200) - 100) + 0.5f) * scale;
              break;
            case 1:
              xv[i] = i % 12 == 1 ? std::nanf("") : -std::numeric_limits<float>::infinity();
              break;
            default:
              xv[i] = u(rng);
          }
        }
        Tensor s(DType::F32, {});
        s.data<float>()[0] = scale;
        const Tensor z = ints(t, {}, {zp});
        NodeSpec q;
        q.op_type = "QuantizeLinear";
        q.opset = 13;
        const Tensor y = run_node(qreg(), q, {x, s, z})[0];
        const std::vector<int32_t> got = values(y);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i)
          bad += got[size_t(i)] != quant::quantize_value(xv[i], scale, zp, qmin_of(t), qmax_of(t));
        INFO("n ", n, " type ", dtype_name(t));
        CHECK(bad == 0);
      }
    }
  });
}

TEST_CASE("DynamicQuantizeLinear: hand-computed scale and zero point, all zeros, NaN") {
  const OpRegistry& reg = engine_registry();
  NodeSpec d;
  d.op_type = "DynamicQuantizeLinear";
  d.num_outputs = 3;
  // lo = -1, hi = 4: scale 5 / 255, zero point round(1 / (5 / 255)) = round(51) = 51;
  // y = round(x * 51) + 51 clamped: -1 -> 0, 0 -> 51, 2 -> 153, 4 -> 255, NaN -> 51.
  auto r =
      run_node(reg, d, {Tensor::from_vector<float>({5}, {-1.0f, 0.0f, 2.0f, 4.0f, std::nanf("")})});
  CHECK(r[1].data<float>()[0] == 5.0f / 255.0f);
  CHECK(int(r[2].data<uint8_t>()[0]) == 51);
  const std::vector<int> want{0, 51, 153, 255, 51};
  for (int i = 0; i < 5; ++i) CHECK(int(r[0].data<uint8_t>()[i]) == want[size_t(i)]);
  // All zeros: the definition divides 0 by 0; a scale of 1 and zero point 0 keep y = 0 exact.
  auto z = run_node(reg, d, {Tensor(DType::F32, {3})});
  CHECK(z[1].data<float>()[0] == 1.0f);
  CHECK(int(z[2].data<uint8_t>()[0]) == 0);
  for (int i = 0; i < 3; ++i) CHECK(int(z[0].data<uint8_t>()[i]) == 0);
}
