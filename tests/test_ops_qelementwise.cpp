// Tests of the integer elementwise / pooling ops (ops/qelementwise.cpp, ops/qpool.cpp) and of the
// plain ops that must carry int8 / uint8 tensors unchanged (MaxPool, Clip, Pad, Resize, shape
// ops). Expected values come from naive loops written here, following the formulas of the
// quantization design (quant_spec), using the fixed-point primitives of quant/fixedpoint.h.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "ops/ops.h"
#include "quant/fixedpoint.h"
#include "tests/model_builder.h"
#include "tests/op_test_util.h"

namespace {

using engine::Attributes;
using engine::Dims;
using engine::DType;
using engine::Tensor;
using engine::test::NodeSpec;
using engine::test::run_node;
namespace q = engine::quant;

const engine::OpRegistry& reg() {
  return engine::reference_registry();
}

NodeSpec spec(const std::string& op, const std::string& domain = "engine", Attributes a = {}) {
  NodeSpec s;
  s.op_type = op;
  s.domain = domain;
  s.attrs = std::move(a);
  s.opset = domain.empty() ? 17 : 1;
  return s;
}

int32_t qmin(DType t) {
  return t == DType::U8 ? 0 : -128;
}
int32_t qmax(DType t) {
  return t == DType::U8 ? 255 : 127;
}

// Random tensor of type t (uint8 / int8) with values in [qmin(t), qmax(t)].
Tensor rand_q(std::mt19937& rng, DType t, Dims shape) {
  Tensor x(t, std::move(shape));
  std::uniform_int_distribution<int> d(qmin(t), qmax(t));
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (t == DType::U8)
      x.data<uint8_t>()[i] = uint8_t(d(rng));
    else
      x.data<int8_t>()[i] = int8_t(d(rng));
  }
  return x;
}
Tensor zp(DType t, int32_t v) {
  return t == DType::U8 ? Tensor::scalar<uint8_t>(uint8_t(v)) : Tensor::scalar<int8_t>(int8_t(v));
}
Tensor sc(float s) {
  return Tensor::scalar<float>(s);
}
int32_t val(const Tensor& t, int64_t i) {
  return int32_t(t.get_as_int(i));
}

// Flat index into an input of shape `in` broadcast to `out`, for output flat index o.
int64_t bcast_index(const Dims& out, const Dims& in, int64_t o) {
  int64_t idx = 0, stride = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    const size_t d_in = in.size() - 1 - k, d_out = out.size() - 1 - k;
    const int64_t c = o % out[d_out];
    o /= out[d_out];
    if (in[d_in] != 1) idx += c * stride;
    stride *= in[d_in];
  }
  return idx;
}

Attributes requant_attrs(const std::string& mode, int bits = 31, int lo = -999, int hi = -999) {
  Attributes a;
  a.set("requant", mode);
  a.set("scale_bits", int64_t(bits));
  if (lo != -999) a.set("out_min", int64_t(lo));
  if (hi != -999) a.set("out_max", int64_t(hi));
  return a;
}

// The spec's TFLite-style fixed-point add, written out for one element.
int32_t naive_qadd_fixed(int32_t a, int32_t b, float as, int32_t za, float bs, int32_t zb, float ys,
                         int32_t zy, int bits, int32_t lo, int32_t hi) {
  const double m2 = 2.0 * std::max(double(as), double(bs));
  const int32_t a1 = (a - za) * (1 << 20), b1 = (b - zb) * (1 << 20);
  const int32_t s = q::apply_multiplier(a1, q::decompose_multiplier(double(as) / m2, bits)) +
                    q::apply_multiplier(b1, q::decompose_multiplier(double(bs) / m2, bits));
  const int64_t y =
      int64_t(zy) + q::apply_multiplier(s, q::decompose_multiplier(m2 / (1048576.0 * ys), bits));
  return int32_t(std::clamp<int64_t>(y, lo, hi));
}

// round_half_even(v) + zp, clamped (float-mode definition).
int32_t round_clamp(float v, int32_t zp, int32_t lo, int32_t hi) {
  const double r = std::nearbyint(double(v)) + zp;  // default mode: ties to even
  return int32_t(std::clamp<double>(r, lo, hi));
}

struct BinCase {
  Dims as, bs, ys;  // input shapes and the broadcast output shape
};
const std::vector<BinCase> kBinShapes = {{{2, 3, 1, 5}, {3, 4, 1}, {2, 3, 4, 5}},
                                         {{7}, {}, {7}},
                                         {{1}, {3, 5}, {3, 5}},
                                         {{33}, {33}, {33}},
                                         {{3, 5001}, {3, 5001}, {3, 5001}},
                                         {{17, 1}, {1, 3}, {17, 3}}};

}  // namespace

TEST_CASE("QAdd fixed: equals the TFLite-style formula and is within 1 of the real sum") {
  std::mt19937 rng(1);
  for (DType ta : {DType::U8, DType::I8})
    for (DType ty : {DType::U8, DType::I8})
      for (const BinCase& c : kBinShapes)
        for (int bits : {31, 12}) {
          const DType tb = ta == DType::U8 ? DType::I8 : DType::U8;  // mixed input types too
          const Tensor a = rand_q(rng, ta, c.as), b = rand_q(rng, tb, c.bs);
          // Either input may have the larger scale.
          const float as = ta == DType::U8 ? 0.031f : 0.0173f,
                      bs = ta == DType::U8 ? 0.0173f : 0.031f;
          const float ys = 0.047f;
          const int32_t za = ta == DType::U8 ? 131 : -7, zb = tb == DType::U8 ? 90 : 3;
          const int32_t zy = ty == DType::U8 ? 128 : 0;
          const auto out =
              run_node(reg(), spec("QAdd", "engine", requant_attrs("fixed", bits)),
                       {a, sc(as), zp(ta, za), b, sc(bs), zp(tb, zb), sc(ys), zp(ty, zy)});
          const Tensor& y = out[0];
          REQUIRE(y.dtype() == ty);
          REQUIRE(y.shape() == c.ys);
          int mismatches = 0, far = 0;
          for (int64_t i = 0; i < y.numel(); ++i) {
            const int32_t va = val(a, bcast_index(y.shape(), c.as, i));
            const int32_t vb = val(b, bcast_index(y.shape(), c.bs, i));
            const int32_t want =
                naive_qadd_fixed(va, vb, as, za, bs, zb, ys, zy, bits, qmin(ty), qmax(ty));
            mismatches += val(y, i) != want;
            const double real = double(zy) + ((va - za) * double(as) + (vb - zb) * double(bs)) / ys;
            const double clamped = std::clamp<double>(real, qmin(ty), qmax(ty));
            if (bits == 31) far += std::abs(val(y, i) - clamped) > 1.0;
          }
          CHECK(mismatches == 0);
          CHECK(far == 0);
        }
}

namespace {

// Message of the engine::Error thrown by f ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("QAdd float mode and clamp range; QLinearAdd is the float mode with full range") {
  std::mt19937 rng(2);
  for (DType t : {DType::U8, DType::I8})
    for (const BinCase& c : kBinShapes) {
      const Tensor a = rand_q(rng, t, c.as), b = rand_q(rng, t, c.bs);
      const float as = 0.02f, bs = 0.05f, ys = 0.06f;
      const int32_t za = t == DType::U8 ? 100 : -20, zb = t == DType::U8 ? 140 : 10;
      const int32_t zy = t == DType::U8 ? 120 : -5;
      const int32_t lo = t == DType::U8 ? 10 : -100, hi = t == DType::U8 ? 200 : 50;
      const auto y = run_node(reg(), spec("QAdd", "engine", requant_attrs("float", 31, lo, hi)),
                              {a, sc(as), zp(t, za), b, sc(bs), zp(t, zb), sc(ys), zp(t, zy)})[0];
      REQUIRE(y.shape() == c.ys);
      // com.microsoft: A's zero point omitted (0), C's zero point left out entirely.
      const auto ym = run_node(reg(), spec("QLinearAdd", "com.microsoft"),
                               {a, sc(as), Tensor(), b, sc(bs), zp(t, zb), sc(ys)})[0];
      REQUIRE(ym.dtype() == t);
      REQUIRE(ym.shape() == c.ys);
      int bad = 0, bad_ms = 0, clamped = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        const int32_t va = val(a, bcast_index(c.ys, c.as, i)),
                      vb = val(b, bcast_index(c.ys, c.bs, i));
        const float real = float(va - za) * as + float(vb - zb) * bs;
        const int32_t want = round_clamp(real / ys, zy, lo, hi);
        bad += val(y, i) != want;
        clamped += want == lo || want == hi;
        const float real_ms = float(va) * as + float(vb - zb) * bs;
        bad_ms += val(ym, i) != round_clamp(real_ms / ys, 0, qmin(t), qmax(t));
      }
      CHECK(bad == 0);
      CHECK(bad_ms == 0);
      if (y.numel() > 30) CHECK(clamped > 0);  // the clamp range was exercised
    }
}

TEST_CASE("QMul fixed and float vs naive; QLinearMul") {
  std::mt19937 rng(3);
  for (DType t : {DType::U8, DType::I8})
    for (const BinCase& c : kBinShapes)
      for (const char* mode : {"fixed", "float"}) {
        const bool fixed = std::string(mode) == "fixed";
        const int bits = 31;
        const Tensor a = rand_q(rng, t, c.as), b = rand_q(rng, t, c.bs);
        const float as = 0.013f, bs = 0.021f, ys = 0.0125f;
        const int32_t za = t == DType::U8 ? 128 : 0, zb = t == DType::U8 ? 77 : -9;
        const int32_t zy = t == DType::U8 ? 128 : 0;
        const int32_t lo = qmin(t) + 3, hi = qmax(t) - 5;
        const auto y = run_node(reg(), spec("QMul", "engine", requant_attrs(mode, bits, lo, hi)),
                                {a, sc(as), zp(t, za), b, sc(bs), zp(t, zb), sc(ys), zp(t, zy)})[0];
        REQUIRE(y.shape() == c.ys);
        const q::FixedMultiplier fm = q::decompose_multiplier(double(as) * bs / ys, bits);
        const float mf = as * bs / ys;
        int bad = 0, far = 0;
        for (int64_t i = 0; i < y.numel(); ++i) {
          const int32_t va = val(a, bcast_index(c.ys, c.as, i));
          const int32_t vb = val(b, bcast_index(c.ys, c.bs, i));
          const int32_t prod = (va - za) * (vb - zb);
          const int32_t want = fixed ? std::clamp(zy + q::apply_multiplier(prod, fm), lo, hi)
                                     : round_clamp(float(prod) * mf, zy, lo, hi);
          bad += val(y, i) != want;
          const double real = std::clamp(zy + double(prod) * as * bs / ys, double(lo), double(hi));
          far += std::abs(val(y, i) - real) > 1.0;
        }
        CHECK(bad == 0);
        CHECK(far == 0);
        if (!fixed) {
          const auto ym =
              run_node(reg(), spec("QLinearMul", "com.microsoft"),
                       {a, sc(as), zp(t, za), b, sc(bs), zp(t, zb), sc(ys), zp(t, zy)})[0];
          int bad_ms = 0;
          for (int64_t i = 0; i < ym.numel(); ++i) {
            const int32_t prod = (val(a, bcast_index(c.ys, c.as, i)) - za) *
                                 (val(b, bcast_index(c.ys, c.bs, i)) - zb);
            bad_ms += val(ym, i) != round_clamp(float(prod) * mf, zy, qmin(t), qmax(t));
          }
          CHECK(bad_ms == 0);
        }
      }
}

TEST_CASE("QAdd / QMul reject bad inputs and attributes") {
  const Tensor a = Tensor::from_vector<uint8_t>({3}, {1, 2, 3});
  const Tensor b = Tensor::from_vector<uint8_t>({2}, {1, 2});
  auto run = [&](const Tensor& x, const Tensor& y, Attributes at, float ys = 0.1f,
                 Tensor yzp = zp(DType::U8, 0)) {
    return error_of([&] {
      run_node(reg(), spec("QAdd", "engine", at),
               {x, sc(0.1f), zp(DType::U8, 0), y, sc(0.1f), zp(DType::U8, 0), sc(ys), yzp});
    });
  };
  CHECK(contains(run(a, b, {}), "not broadcastable"));
  CHECK(contains(run(a, a, requant_attrs("fixed", 31, 0, 256)), "out_max"));
  CHECK(contains(run(a, a, requant_attrs("fixed", 31, 9, 3)), "out_min"));
  CHECK(contains(run(a, a, requant_attrs("round")), "requant"));
  CHECK(contains(run(a, a, requant_attrs("fixed", 0)), "scale_bits"));
  CHECK(contains(run(a, a, {}, 0.f), "Y_scale"));
  CHECK(run(a, a, {}, 0.1f, zp(DType::I8, 0)).empty());  // an int8 output is allowed
  const Tensor f = Tensor::from_vector<float>({3}, {1, 2, 3});
  CHECK(contains(run(f, a, {}), "uint8 or int8"));
  // A zero point whose type differs from its tensor.
  CHECK(contains(error_of([&] {
                   run_node(reg(), spec("QMul"),
                            {a, sc(0.1f), zp(DType::I8, 0), a, sc(0.1f), zp(DType::U8, 0), sc(0.1f),
                             zp(DType::U8, 0)});
                 }),
                 "A_zero_point"));
}

namespace {

// Concatenation of `xs` along `axis`, element i of the output: (input k, flat index in it).
std::pair<size_t, int64_t> concat_source(const std::vector<Tensor>& xs, int axis, int64_t i) {
  int64_t inner = 1;
  for (int d = axis + 1; d < xs[0].rank(); ++d) inner *= xs[0].dim(d);
  int64_t total_axis = 0;
  for (const Tensor& x : xs) total_axis += x.dim(axis);
  const int64_t o = i / (total_axis * inner), r = i % (total_axis * inner);
  int64_t a = r / inner;
  const int64_t in = r % inner;
  for (size_t k = 0; k < xs.size(); ++k) {
    if (a < xs[k].dim(axis)) return {k, (o * xs[k].dim(axis) + a) * inner + in};
    a -= xs[k].dim(axis);
  }
  return {0, 0};
}

}  // namespace

TEST_CASE("QConcat: equal scale and zero point is an exact copy") {
  std::mt19937 rng(4);
  for (DType t : {DType::U8, DType::I8})
    for (const char* mode : {"fixed", "float"}) {
      const std::vector<Tensor> xs = {rand_q(rng, t, {2, 3, 5}), rand_q(rng, t, {2, 1, 5}),
                                      rand_q(rng, t, {2, 4, 5})};
      Attributes at = requant_attrs(mode);
      at.set("axis", int64_t(1));
      const int32_t z = t == DType::U8 ? 133 : -3;
      std::vector<Tensor> in = {sc(0.37f), zp(t, z)};
      for (const Tensor& x : xs) in.insert(in.end(), {x, sc(0.37f), zp(t, z)});
      const Tensor y = run_node(reg(), spec("QConcat", "engine", at), in)[0];
      REQUIRE(y.shape() == Dims{2, 8, 5});
      int bad = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        const auto [k, j] = concat_source(xs, 1, i);
        bad += val(y, i) != val(xs[k], j);
      }
      CHECK(bad == 0);
    }
}

TEST_CASE("QConcat requantizes each input (fixed, float, mixed types, clamp); QLinearConcat") {
  std::mt19937 rng(5);
  for (DType ty : {DType::U8, DType::I8})
    for (const char* mode : {"fixed", "float"})
      for (int bits : {31, 9}) {
        const bool fixed = std::string(mode) == "fixed";
        const std::vector<Tensor> xs = {rand_q(rng, DType::U8, {3, 7}),
                                        rand_q(rng, DType::I8, {3, 2}), rand_q(rng, ty, {3, 1})};
        const std::vector<float> scales = {0.05f, 0.011f, 0.2f};
        const std::vector<int32_t> zps = {120, -4, ty == DType::U8 ? 3 : 0};
        const float ys = 0.07f;
        const int32_t zy = ty == DType::U8 ? 128 : 2;
        const int32_t lo = qmin(ty) + 20, hi = qmax(ty) - 1;
        Attributes at = requant_attrs(mode, bits, lo, hi);
        at.set("axis", int64_t(-1));
        std::vector<Tensor> in = {sc(ys), zp(ty, zy)};
        for (size_t k = 0; k < xs.size(); ++k)
          in.insert(in.end(), {xs[k], sc(scales[k]), zp(xs[k].dtype(), zps[k])});
        const Tensor y = run_node(reg(), spec("QConcat", "engine", at), in)[0];
        REQUIRE(y.dtype() == ty);
        REQUIRE(y.shape() == Dims{3, 10});
        int bad = 0;
        for (int64_t i = 0; i < y.numel(); ++i) {
          const auto [k, j] = concat_source(xs, 1, i);
          const int32_t d = val(xs[k], j) - zps[k];
          const int32_t want =
              fixed ? std::clamp(zy + q::apply_multiplier(
                                          d, q::decompose_multiplier(double(scales[k]) / ys, bits)),
                                 lo, hi)
                    : round_clamp(float(d) * scales[k] / ys, zy, lo, hi);
          bad += val(y, i) != want;
        }
        CHECK(bad == 0);
        if (fixed || bits != 31) continue;
        // com.microsoft QLinearConcat: float mode, full range.
        Attributes ma;
        ma.set("axis", int64_t(1));
        const Tensor ym = run_node(reg(), spec("QLinearConcat", "com.microsoft", ma), in)[0];
        int bad_ms = 0;
        for (int64_t i = 0; i < ym.numel(); ++i) {
          const auto [k, j] = concat_source(xs, 1, i);
          bad_ms += val(ym, i) != round_clamp(float(val(xs[k], j) - zps[k]) * scales[k] / ys, zy,
                                              qmin(ty), qmax(ty));
        }
        CHECK(bad_ms == 0);
      }
  // Shape mismatch off the axis is rejected.
  Attributes at;
  at.set("axis", int64_t(0));
  const std::string err = error_of([&] {
    run_node(reg(), spec("QConcat", "engine", at),
             {sc(1.f), zp(DType::U8, 0), Tensor(DType::U8, {2, 3}), sc(1.f), zp(DType::U8, 0),
              Tensor(DType::U8, {2, 4}), sc(1.f), zp(DType::U8, 0)});
  });
  CHECK(contains(err, "incompatible"));
}

TEST_CASE("QLut maps through the table, clamped to out_min/out_max") {
  std::mt19937 rng(6);
  for (DType tx : {DType::U8, DType::I8})
    for (DType ty : {DType::U8, DType::I8}) {
      const Tensor x = rand_q(rng, tx, {4, 9});
      const Tensor table = rand_q(rng, ty, {256});
      Attributes a;
      a.set("out_min", int64_t(qmin(ty) + 30));
      a.set("out_max", int64_t(qmax(ty) - 30));
      const Tensor y = run_node(reg(), spec("QLut", "engine", a), {x, table})[0];
      REQUIRE(y.dtype() == ty);
      REQUIRE(y.shape() == x.shape());
      int bad = 0;
      for (int64_t i = 0; i < x.numel(); ++i)
        bad +=
            val(y, i) != std::clamp(val(table, val(x, i) - qmin(tx)), qmin(ty) + 30, qmax(ty) - 30);
      CHECK(bad == 0);
    }
  CHECK(
      contains(error_of([] {
                 run_node(reg(), spec("QLut"), {Tensor(DType::U8, {2}), Tensor(DType::U8, {255})});
               }),
               "[256]"));
}

namespace {

struct Pool2d {
  int64_t kh, kw, sh, sw, pt, pl, pb, pr;
};

Attributes pool_attrs(const Pool2d& p, int cip, const std::string& mode = "") {
  Attributes a = mode.empty() ? Attributes{} : requant_attrs(mode);
  a.set("kernel_shape", std::vector<int64_t>{p.kh, p.kw});
  a.set("strides", std::vector<int64_t>{p.sh, p.sw});
  a.set("pads", std::vector<int64_t>{p.pt, p.pl, p.pb, p.pr});
  if (cip >= 0) a.set("count_include_pad", int64_t(cip));
  return a;
}

// Naive 2-D window walk (ceil_mode 0): calls f(plane, oh, ow, taps_in_input, taps_in_padded,
// values) for every output, with the values of the taps inside the input.
template <class F>
void naive_windows(const Tensor& x, const Pool2d& p, F&& f) {
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = (H + p.pt + p.pb - p.kh) / p.sh + 1, OW = (W + p.pl + p.pr - p.kw) / p.sw + 1;
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        std::vector<int32_t> vals;
        int64_t padded = 0;
        for (int64_t i = 0; i < p.kh; ++i)
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t h = oh * p.sh - p.pt + i, w = ow * p.sw - p.pl + j;
            if (h >= -p.pt && h < H + p.pb && w >= -p.pl && w < W + p.pr) ++padded;
            if (h >= 0 && h < H && w >= 0 && w < W) vals.push_back(val(x, (c * H + h) * W + w));
          }
        f(c, oh, ow, OH, OW, vals, padded);
      }
}

const std::vector<Pool2d> kPools = {{3, 3, 1, 1, 1, 1, 1, 1},
                                    {2, 3, 2, 2, 0, 1, 1, 2},
                                    {3, 2, 2, 1, 2, 0, 0, 1},
                                    {1, 1, 3, 2, 0, 0, 0, 0},
                                    {5, 5, 2, 2, 2, 2, 2, 2}};

}  // namespace

TEST_CASE("QAveragePool vs naive: pads, strides, count_include_pad 0/1, both modes") {
  std::mt19937 rng(7);
  for (DType t : {DType::U8, DType::I8})
    for (const Pool2d& p : kPools)
      for (int cip : {0, 1})
        for (const char* mode : {"fixed", "float"}) {
          const bool fixed = std::string(mode) == "fixed";
          const Tensor x = rand_q(rng, t, {2, 3, 7, 9});
          const float xs = 0.043f, ys = 0.031f;
          const int32_t zx = t == DType::U8 ? 110 : -10, zy = t == DType::U8 ? 125 : 4;
          const auto y = run_node(reg(), spec("QAveragePool", "engine", pool_attrs(p, cip, mode)),
                                  {x, sc(xs), zp(t, zx), sc(ys), zp(t, zy)})[0];
          REQUIRE(y.dtype() == t);
          int bad = 0, far = 0, n = 0;
          naive_windows(
              x, p,
              [&](int64_t c, int64_t oh, int64_t ow, int64_t OH, int64_t OW,
                  const std::vector<int32_t>& vals, int64_t padded) {
                const int64_t count = cip ? padded : int64_t(vals.size());
                int32_t acc = 0;
                for (int32_t v : vals) acc += v - zx;
                const int32_t want =
                    fixed ? std::clamp(zy + q::apply_multiplier(
                                                acc, q::decompose_multiplier(
                                                         double(xs) / (double(ys) * count), 31)),
                                       qmin(t), qmax(t))
                          : round_clamp(float(acc) * (xs / (ys * float(count))), zy, qmin(t),
                                        qmax(t));
                const int64_t i = (c * OH + oh) * OW + ow;
                bad += val(y, i) != want;
                const double real = std::clamp(zy + double(acc) * xs / (double(ys) * count),
                                               double(qmin(t)), double(qmax(t)));
                far += std::abs(val(y, i) - real) > 1.0;
                ++n;
              });
          REQUIRE(n == y.numel());
          CHECK(bad == 0);
          CHECK(far == 0);
        }
}

TEST_CASE("QLinearAveragePool is float mode; channels_last=1 is rejected") {
  std::mt19937 rng(8);
  const Pool2d p = {3, 3, 2, 2, 1, 1, 1, 1};
  const Tensor x = rand_q(rng, DType::U8, {1, 2, 6, 5});
  const std::vector<Tensor> in = {x, sc(0.1f), zp(DType::U8, 128), sc(0.05f), zp(DType::U8, 100)};
  const Tensor y =
      run_node(reg(), spec("QLinearAveragePool", "com.microsoft", pool_attrs(p, 1)), in)[0];
  const Tensor yf =
      run_node(reg(), spec("QAveragePool", "engine", pool_attrs(p, 1, "float")), in)[0];
  REQUIRE(y.shape() == Dims{1, 2, 3, 3});
  for (int64_t i = 0; i < y.numel(); ++i) CHECK(val(y, i) == val(yf, i));
  Attributes a = pool_attrs(p, 1);
  a.set("channels_last", int64_t(1));
  CHECK(contains(
      error_of([&] { run_node(reg(), spec("QLinearAveragePool", "com.microsoft", a), in); }),
      "channels_last"));
  Attributes g;
  g.set("channels_last", int64_t(2));  // the global pools take 0 or 1
  CHECK(contains(
      error_of([&] { run_node(reg(), spec("QLinearGlobalAveragePool", "com.microsoft", g), in); }),
      "channels_last"));
}

TEST_CASE("QGlobalAveragePool / QLinearGlobalAveragePool vs naive") {
  std::mt19937 rng(9);
  for (DType t : {DType::U8, DType::I8})
    for (const char* mode : {"fixed", "float", "ms"}) {
      const bool ms = std::string(mode) == "ms", fixed = std::string(mode) == "fixed";
      const Tensor x = rand_q(rng, t, {2, 5, 3, 7});
      const float xs = 0.02f, ys = 0.011f;
      const int32_t zx = t == DType::U8 ? 60 : 5, zy = t == DType::U8 ? 128 : -3;
      const int32_t lo = ms ? qmin(t) : qmin(t) + 40, hi = qmax(t);
      const std::vector<Tensor> in = {x, sc(xs), zp(t, zx), sc(ys), zp(t, zy)};
      const Tensor y =
          ms ? run_node(reg(), spec("QLinearGlobalAveragePool", "com.microsoft"), in)[0]
             : run_node(reg(), spec("QGlobalAveragePool", "engine", requant_attrs(mode, 31, lo)),
                        in)[0];
      REQUIRE(y.shape() == Dims{2, 5, 1, 1});
      for (int64_t c = 0; c < 10; ++c) {
        int32_t acc = 0;
        for (int64_t i = 0; i < 21; ++i) acc += val(x, c * 21 + i) - zx;
        const int32_t want =
            fixed ? std::clamp(zy + q::apply_multiplier(
                                        acc, q::decompose_multiplier(double(xs) / (ys * 21.0), 31)),
                               lo, hi)
                  : round_clamp(float(acc) * (xs / (ys * 21.f)), zy, lo, hi);
        CHECK(val(y, c) == want);
      }
    }
}

TEST_CASE("QGlobalAveragePool / QLinearGlobalAveragePool with channels_last = 1: the NCHW sums") {
  // x [N,C,H,W] (checked against naive sums above) and its NHWC transpose give the same bytes;
  // C = 300 spans two channel blocks of the NHWC kernel.
  std::mt19937 rng(19);
  Attributes to_nhwc;
  to_nhwc.set("perm", std::vector<int64_t>{0, 2, 3, 1});
  for (DType t : {DType::U8, DType::I8})
    for (const char* mode : {"fixed", "float", "ms"})
      for (const Dims& shape : {Dims{2, 5, 3, 7}, Dims{3, 300, 4, 4}, Dims{1, 16, 1, 1}}) {
        CAPTURE(mode);
        CAPTURE(engine::dims_str(shape));
        const bool ms = std::string(mode) == "ms";
        const Tensor x = rand_q(rng, t, shape);
        const Tensor xt = run_node(reg(), spec("Transpose", "", to_nhwc), {x})[0];
        const int32_t zx = t == DType::U8 ? 200 : -100, zy = t == DType::U8 ? 7 : 3;
        const std::vector<Tensor> in = {x, sc(0.03f), zp(t, zx), sc(0.013f), zp(t, zy)};
        std::vector<Tensor> in_t = in;
        in_t[0] = xt;
        const char* op = ms ? "QLinearGlobalAveragePool" : "QGlobalAveragePool";
        const char* domain = ms ? "com.microsoft" : "engine";
        Attributes a = ms ? Attributes() : requant_attrs(mode, 31, qmin(t) + 10);
        const Tensor want = run_node(reg(), spec(op, domain, a), in)[0];
        a.set("channels_last", int64_t(1));
        const Tensor got = run_node(reg(), spec(op, domain, a), in_t)[0];
        REQUIRE(got.shape() == Dims{shape[0], 1, 1, shape[1]});
        REQUIRE(want.numel() == got.numel());
        for (int64_t i = 0; i < want.numel(); ++i) CHECK(val(got, i) == val(want, i));
      }
}

TEST_CASE("MaxPool and GlobalMaxPool on uint8 / int8 vs naive") {
  std::mt19937 rng(10);
  for (DType t : {DType::U8, DType::I8})
    for (const Pool2d& p : kPools) {
      const Tensor x = rand_q(rng, t, {2, 3, 7, 9});
      const Tensor y = run_node(reg(), spec("MaxPool", "", pool_attrs(p, -1)), {x})[0];
      REQUIRE(y.dtype() == t);
      int bad = 0, n = 0;
      naive_windows(x, p,
                    [&](int64_t c, int64_t oh, int64_t ow, int64_t OH, int64_t OW,
                        const std::vector<int32_t>& vals, int64_t) {
                      REQUIRE(!vals.empty());
                      bad += val(y, (c * OH + oh) * OW + ow) !=
                             *std::max_element(vals.begin(), vals.end());
                      ++n;
                    });
      REQUIRE(n == y.numel());
      CHECK(bad == 0);
      const Tensor g = run_node(reg(), spec("GlobalMaxPool", ""), {x})[0];
      REQUIRE(g.shape() == Dims{2, 3, 1, 1});
      for (int64_t c = 0; c < 6; ++c) {
        int32_t m = qmin(t);
        for (int64_t i = 0; i < 63; ++i) m = std::max(m, val(x, c * 63 + i));
        CHECK(val(g, c) == m);
      }
    }
}

TEST_CASE("Clip on int8 / uint8 with integer bounds") {
  std::mt19937 rng(11);
  for (DType t : {DType::U8, DType::I8}) {
    const Tensor x = rand_q(rng, t, {5, 13});
    const int32_t lo = t == DType::U8 ? 17 : -50, hi = t == DType::U8 ? 201 : 33;
    const Tensor y = run_node(reg(), spec("Clip", ""), {x, zp(t, lo), zp(t, hi)})[0];
    REQUIRE(y.dtype() == t);
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(val(y, i) == std::clamp(val(x, i), lo, hi));
    // Only a lower bound (the quantized Relu).
    const Tensor r = run_node(reg(), spec("Clip", ""), {x, zp(t, lo)})[0];
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(val(r, i) == std::max(val(x, i), lo));
  }
}

TEST_CASE("Pad constant mode and Resize nearest carry uint8 / int8 exactly") {
  std::mt19937 rng(12);
  for (DType t : {DType::U8, DType::I8}) {
    const Tensor x = rand_q(rng, t, {1, 2, 3, 4});
    // Pad H by (1, 0) and W by (0, 2) with the zero point as the value.
    const int32_t z = t == DType::U8 ? 128 : -1;
    const Tensor pads = Tensor::from_vector<int64_t>({8}, {0, 0, 1, 0, 0, 0, 0, 2});
    const Tensor y = run_node(reg(), spec("Pad", ""), {x, pads, zp(t, z)})[0];
    REQUIRE(y.dtype() == t);
    REQUIRE(y.shape() == Dims{1, 2, 4, 6});
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 6; ++w) {
          const bool inside = h >= 1 && w < 4;
          const int32_t want = inside ? val(x, (c * 3 + h - 1) * 4 + w) : z;
          CHECK(val(y, (c * 4 + h) * 6 + w) == want);
        }
    // Resize nearest x2 (half_pixel, round_prefer_floor): every value repeated in a 2x2 block.
    const Tensor scales = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
    Attributes a;
    a.set("mode", std::string("nearest"));
    const Tensor r = run_node(reg(), spec("Resize", "", a), {x, Tensor(), scales})[0];
    REQUIRE(r.dtype() == t);
    REQUIRE(r.shape() == Dims{1, 2, 6, 8});
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t h = 0; h < 6; ++h)
        for (int64_t w = 0; w < 8; ++w)
          CHECK(val(r, (c * 6 + h) * 8 + w) == val(x, (c * 3 + h / 2) * 4 + w / 2));
  }
}

TEST_CASE("shape ops carry uint8 / int8 exactly") {
  std::mt19937 rng(13);
  for (DType t : {DType::U8, DType::I8}) {
    const Tensor x = rand_q(rng, t, {2, 3, 4});
    auto same_values = [&](const Tensor& y) {
      REQUIRE(y.dtype() == t);
      REQUIRE(y.numel() == x.numel());
      for (int64_t i = 0; i < x.numel(); ++i) CHECK(val(y, i) == val(x, i));
    };
    auto I64 = [](std::vector<int64_t> v) {
      return Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
    };
    same_values(run_node(reg(), spec("Reshape", ""), {x, I64({4, -1})})[0]);
    same_values(run_node(reg(), spec("Flatten", ""), {x})[0]);
    const Tensor sq = run_node(reg(), spec("Unsqueeze", ""), {x, I64({0})})[0];
    REQUIRE(sq.shape() == Dims{1, 2, 3, 4});
    same_values(sq);
    const Tensor us = run_node(reg(), spec("Squeeze", ""), {sq, I64({0})})[0];
    REQUIRE(us.shape() == x.shape());
    same_values(us);
    // Transpose (2, 0, 1): y[k][i][j] = x[i][j][k].
    Attributes perm;
    perm.set("perm", std::vector<int64_t>{2, 0, 1});
    const Tensor tr = run_node(reg(), spec("Transpose", "", perm), {x})[0];
    REQUIRE(tr.shape() == Dims{4, 2, 3});
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k)
          CHECK(val(tr, (k * 2 + i) * 3 + j) == val(x, (i * 3 + j) * 4 + k));
    // Slice [:, 1:3, ::2].
    const Tensor sl = run_node(reg(), spec("Slice", ""),
                               {x, I64({1, 0}), I64({3, 4}), I64({1, 2}), I64({1, 2})})[0];
    REQUIRE(sl.shape() == Dims{2, 2, 2});
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t k = 0; k < 2; ++k)
          CHECK(val(sl, (i * 2 + j) * 2 + k) == val(x, (i * 3 + j + 1) * 4 + 2 * k));
    // Split on axis 1 into 1 + 2, then Concat back.
    NodeSpec sp = spec("Split", "");
    sp.attrs.set("axis", int64_t(1));
    sp.num_outputs = 2;
    const auto parts = run_node(reg(), sp, {x, I64({1, 2})});
    REQUIRE(parts[0].shape() == Dims{2, 1, 4});
    REQUIRE(parts[1].shape() == Dims{2, 2, 4});
    Attributes ax;
    ax.set("axis", int64_t(1));
    const Tensor cat = run_node(reg(), spec("Concat", "", ax), {parts[0], parts[1]})[0];
    REQUIRE(cat.shape() == x.shape());
    same_values(cat);
  }
}

TEST_CASE("com.microsoft QLinearAdd -> QLinearGlobalAveragePool load and run from ONNX") {
  engine::test::ModelBuilder mb(13);
  auto* ms = mb.proto().add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  mb.input("a", {1, 2, 2, 3}, 2);  // uint8
  mb.init("b", Tensor::from_vector<uint8_t>({3}, {10, 200, 128}));
  mb.init("as", sc(0.05f)).init("az", zp(DType::U8, 128));
  mb.init("bs", sc(0.02f)).init("bz", zp(DType::U8, 100));
  mb.init("cs", sc(0.06f)).init("cz", zp(DType::U8, 120));
  mb.init("ys", sc(0.03f)).init("yz", zp(DType::U8, 90));
  mb.node("QLinearAdd", {"a", "as", "az", "b", "bs", "bz", "cs", "cz"}, {"c"})
      .set_domain("com.microsoft");
  mb.node("QLinearGlobalAveragePool", {"c", "cs", "cz", "ys", "yz"}, {"y"})
      .set_domain("com.microsoft");
  mb.output("y", {1, 2, 1, 1}, 2);
  const engine::Model m = engine::Model::load_from_memory(mb.bytes());
  std::mt19937 rng(14);
  const Tensor a = rand_q(rng, DType::U8, {1, 2, 2, 3});
  const auto out = m.run(std::vector<Tensor>{a});
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].dtype() == DType::U8);
  REQUIRE(out[0].shape() == Dims{1, 2, 1, 1});
  const int32_t b[3] = {10, 200, 128};
  for (int64_t ch = 0; ch < 2; ++ch) {
    int32_t acc = 0;
    for (int64_t i = 0; i < 6; ++i) {
      const float real = float(val(a, ch * 6 + i) - 128) * 0.05f + float(b[i % 3] - 100) * 0.02f;
      acc += round_clamp(real / 0.06f, 120, 0, 255) - 120;
    }
    CHECK(val(out[0], ch) == round_clamp(float(acc) * (0.06f / (0.03f * 6.f)), 90, 0, 255));
  }
}
