// QuantizeLinear / DequantizeLinear (ONNX opsets 10..19, default domain), DynamicQuantizeLinear.
//   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)   (quantize_value)
//   DequantizeLinear: y = (x - zero_point) * scale                           (dequantize_value)
// Per tensor (scale has one value) or per axis (opset >= 13: 1-D scale of length x.shape[axis],
// attribute `axis`, default 1). Quantized types: uint8 / int8 (the zero point's type; uint8 when
// it is omitted); DequantizeLinear also takes int32 (zero point 0).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "ops/ops.h"
#include "ops/qgemm_core.h"
#include "ops/qpertensor.h"

namespace engine {
namespace {

using namespace qops;

// Resolved broadcast of the scale over x: x viewed as [outer, channels, inner].
struct AxisPlan {
  int64_t outer = 1, channels = 1, inner = 1;
};

// Checks scale (input 1) and zero point (input 2, optional) against x's shape.
AxisPlan axis_plan(const Node& node, const char* op, const Dims& x, const Dims& scale,
                   const Dims* zp) {
  AxisPlan p;
  p.inner = checked_numel(x);
  if (is_single(scale)) {
    ENGINE_CHECK(!zp || is_single(*zp), op, ": the zero point must be a scalar like the scale, ",
                 "got shape ", dims_str(*zp));
    return p;
  }
  ENGINE_CHECK(node.opset == 0 || node.opset >= 13, op, ": a 1-D scale (per-axis quantization, ",
               "shape ", dims_str(scale), ") needs opset >= 13, the model imports opset ",
               node.opset);
  const int rank = int(x.size());
  int64_t axis = node.attrs.get_int("axis", 1);
  ENGINE_CHECK(axis >= -rank && axis < rank, op, ": attribute axis=", axis,
               " is out of range for input rank ", rank);
  if (axis < 0) axis += rank;
  ENGINE_CHECK(scale.size() == 1 && scale[0] == x[size_t(axis)], op, ": the scale must be a ",
               "scalar or have shape [", x[size_t(axis)], "] (x.shape[axis=", axis,
               "] for x of shape ", dims_str(x), "), got shape ", dims_str(scale));
  ENGINE_CHECK(!zp || *zp == scale, op, ": the zero point must have the shape of the scale ",
               dims_str(scale), ", got ", dims_str(*zp));
  p.outer = checked_numel(Dims(x.begin(), x.begin() + axis));
  p.channels = x[size_t(axis)];
  p.inner = checked_numel(Dims(x.begin() + axis + 1, x.end()));
  return p;
}

void validate_q(const Node& n) {
  ENGINE_CHECK(n.attrs.get_int("block_size", 0) == 0,
               "attribute block_size (blocked quantization) is not supported");
}

// ---------------------------------------------------------------- QuantizeLinear

DType quantize_out_type(const InferContext& ctx) {
  if (ctx.has_input(2)) return ctx.dtype(2);
  const int64_t t = ctx.attrs().get_int("output_dtype", 0);  // opset 21; 0 = not given
  return t == 0 ? DType::U8 : dtype_from_onnx(int(t));
}

void quantize_infer(InferContext& ctx) {
  const char* op = "QuantizeLinear";
  ENGINE_CHECK(ctx.dtype(0) == DType::F32, op, ": x must be float32, got ",
               dtype_name(ctx.dtype(0)));
  ENGINE_CHECK(ctx.dtype(1) == DType::F32, op, ": y_scale must be float32, got ",
               dtype_name(ctx.dtype(1)));
  const DType out = quantize_out_type(ctx);
  ENGINE_CHECK(is_q8(out), op, ": the output type (type of y_zero_point) must be uint8 or int8, ",
               "got ", dtype_name(out));
  if (ctx.has_input(2) && ctx.attrs().get_int("output_dtype", 0) != 0)
    ENGINE_CHECK(dtype_from_onnx(int(ctx.attrs().get_int("output_dtype"))) == out, op,
                 ": attribute output_dtype disagrees with the type of y_zero_point (",
                 dtype_name(out), ")");
  axis_plan(ctx.node(), op, ctx.shape(0), ctx.shape(1), ctx.has_input(2) ? &ctx.shape(2) : nullptr);
  ctx.set_output(0, out, ctx.shape(0));
}

// y[i] = quantize_value(x[i], scale, zp) for i < n: 8 lanes at a time with AVX2 where the CPU has
// it (the same IEEE division, NaN -> zero point, clamp, and round-half-even conversion as the
// scalar code), the rest scalar.
template <class TY>
void quantize_scalar(const float* x, int64_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                     TY* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = TY(quant::quantize_value(x[i], scale, zp, qmin, qmax));
}

#if defined(__GNUC__) && defined(__x86_64__)
// quantize_value on 8 lanes; the 8 result bytes are the low half.
struct Quantize8 {
  __m256 s, lo, hi;
  __m256i z;
  __attribute__((target("avx2"))) Quantize8(float scale, int32_t zp, int32_t qmin, int32_t qmax)
      : s(_mm256_set1_ps(scale)),
        lo(_mm256_set1_ps(float(qmin) - float(zp))),
        hi(_mm256_set1_ps(float(qmax) - float(zp))),
        z(_mm256_set1_epi32(zp)) {}
  template <class TY>
  __attribute__((target("avx2"), always_inline)) inline __m128i operator()(__m256 x) const {
    __m256 v = _mm256_div_ps(x, s);
    v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);  // NaN -> 0 (the zero point)
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), z);  // ties to even (MXCSR)
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    return std::is_same_v<TY, uint8_t> ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  }
};

template <class TY>
__attribute__((target("avx2"))) void quantize_avx2(const float* x, int64_t n, float scale,
                                                   int32_t zp, int32_t qmin, int32_t qmax, TY* y) {
  const Quantize8 q(scale, zp, qmin, qmax);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), q.operator()<TY>(_mm256_loadu_ps(x + i)));
  quantize_scalar(x + i, n - i, scale, zp, qmin, qmax, y + i);
}

// 8 bytes of type T (int8 when S) -> dequantize_value: float(v - zp) * scale (no FMA after it).
template <bool S>
__attribute__((target("avx2"), always_inline)) inline __m256 dequantize8(const uint8_t* p,
                                                                         __m256i zp, __m256 scale) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m256i v = S ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, zp)), scale);
  asm("" : "+x"(f));  // rounded here, as the scalar product: never fused into the add
  return f;
}

// QAddFloat::run, 8 lanes at a time: the table values computed in registers (the same products),
// the same float sum, Quantize8.
template <bool AS, bool BS, class TY>
__attribute__((target("avx2"))) void qadd_avx2(const qpt::QAddFloat& t, const uint8_t* a,
                                               const uint8_t* b, int64_t n, TY* y) {
  const Quantize8 q(t.ys, t.zy, t.lo, t.hi);
  const __m256i za = _mm256_set1_epi32(t.za), zb = _mm256_set1_epi32(t.zb);
  const __m256 as = _mm256_set1_ps(t.as), bs = _mm256_set1_ps(t.bs);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 sum =
        _mm256_add_ps(dequantize8<AS>(a + i, za, as), dequantize8<BS>(b + i, zb, bs));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), q.operator()<TY>(sum));
  }
  t.run_tables(a + i, b + i, n - i, y + i);
}
#endif

// simd: the integer kernels' path (ops/igemm.h, ENGINE_ISA) is avx2 or above.
template <class TY>
void quantize_run(bool simd, const float* x, int64_t n, float scale, int32_t zp, int32_t qmin,
                  int32_t qmax, TY* y) {
#if defined(__GNUC__) && defined(__x86_64__)
  if (simd) return quantize_avx2(x, n, scale, zp, qmin, qmax, y);
#endif
  (void)simd;
  quantize_scalar(x, n, scale, zp, qmin, qmax, y);
}

void quantize_kernel(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  Tensor& Y = kc.out(0);
  const Tensor* Z = kc.has_input(2) ? &kc.in(2) : nullptr;
  const AxisPlan p =
      axis_plan(kc.node, "QuantizeLinear", X.shape(), kc.in(1).shape(), Z ? &Z->shape() : nullptr);
  const std::vector<float> sc = scales_of(kc.in(1), p.channels, "QuantizeLinear", "y_scale", true);
  const std::vector<int32_t> zp = zero_points_of(Z, p.channels, "QuantizeLinear", "y_zero_point");
  const int32_t qmin = container_min(Y.dtype()), qmax = container_max(Y.dtype());
  const float* x = X.data<float>();
  const bool simd = igemm_isa() >= IgemmIsa::Avx2;
  dispatch_q8(Y.dtype(), [&](auto ty) {
    using TY = decltype(ty);
    TY* y = Y.data<TY>();
    // Work items: blocks of at most 16K elements of one channel's run.
    constexpr int64_t kBlock = 1 << 14;
    const int64_t per = (p.inner + kBlock - 1) / kBlock, items = p.outer * p.channels * per;
#pragma omp parallel for num_threads(std::max(1, kc.num_threads)) if (X.numel() > (1 << 16))
    for (int64_t it = 0; it < items; ++it) {
      const int64_t oc = it / per, b0 = oc * p.inner + (it % per) * kBlock;
      const size_t c = size_t(oc % p.channels);
      const int64_t n = std::min(kBlock, (oc + 1) * p.inner - b0);
      quantize_run(simd, x + b0, n, sc[c], zp[c], qmin, qmax, y + b0);
    }
  });
}

// ---------------------------------------------------------------- DequantizeLinear

void dequantize_infer(InferContext& ctx) {
  const char* op = "DequantizeLinear";
  const DType xt = ctx.dtype(0);
  ENGINE_CHECK(is_q8(xt) || xt == DType::I32, op, ": x must be uint8, int8 or int32, got ",
               dtype_name(xt));
  ENGINE_CHECK(ctx.dtype(1) == DType::F32, op, ": x_scale must be float32, got ",
               dtype_name(ctx.dtype(1)));
  if (ctx.has_input(2))
    ENGINE_CHECK(ctx.dtype(2) == xt, op, ": x_zero_point must have the dtype of x (",
                 dtype_name(xt), "), got ", dtype_name(ctx.dtype(2)));
  axis_plan(ctx.node(), op, ctx.shape(0), ctx.shape(1), ctx.has_input(2) ? &ctx.shape(2) : nullptr);
  ctx.set_output(0, DType::F32, ctx.shape(0));
}

void dequantize_kernel(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const Tensor* Z = kc.has_input(2) ? &kc.in(2) : nullptr;
  const AxisPlan p = axis_plan(kc.node, "DequantizeLinear", X.shape(), kc.in(1).shape(),
                               Z ? &Z->shape() : nullptr);
  // Scales of 0 are allowed here (they only scale the output).
  const std::vector<float> sc =
      scales_of(kc.in(1), p.channels, "DequantizeLinear", "x_scale", false);
  const std::vector<int32_t> zp = zero_points_of(Z, p.channels, "DequantizeLinear", "x_zero_point");
  if (X.dtype() == DType::I32)
    for (int32_t z : zp)
      ENGINE_CHECK(z == 0, "DequantizeLinear: x_zero_point must be 0 for int32 x, got ", z);
  float* y = kc.out(0).data<float>();
  auto run = [&](auto tx) {
    using TX = decltype(tx);
    const TX* x = X.data<TX>();
#pragma omp parallel for num_threads(std::max(1, kc.num_threads)) if (X.numel() > (1 << 16))
    for (int64_t oc = 0; oc < p.outer * p.channels; ++oc) {
      const size_t c = size_t(oc % p.channels);
      for (int64_t i = oc * p.inner; i < (oc + 1) * p.inner; ++i)
        y[i] = quant::dequantize_value(int32_t(x[i]), sc[c], zp[c]);
    }
  };
  if (X.dtype() == DType::I32)
    run(int32_t{});
  else
    dispatch_q8(X.dtype(), run);
}

// ---------------------------------------------------------------- DynamicQuantizeLinear
// x float32 -> y uint8, y_scale, y_zero_point (scalars), in float32 as the ONNX definition:
//   lo = min(0, min x), hi = max(0, max x), y_scale = (hi - lo) / 255,
//   y_zero_point = round_half_even(clamp(0 - lo / y_scale, 0, 255)), y = QuantizeLinear(x).
// NaNs are left out of min / max (QuantizeLinear maps them to the zero point). An all-zero x
// (hi = lo = 0, where the definition divides 0 by 0) gets y_scale 1 and zero point 0: y = 0.

void dynamic_quantize_infer(InferContext& ctx) {
  ENGINE_CHECK(ctx.dtype(0) == DType::F32, "DynamicQuantizeLinear: x must be float32, got ",
               dtype_name(ctx.dtype(0)));
  ctx.set_output(0, DType::U8, ctx.shape(0));
  ctx.set_output(1, DType::F32, {});
  ctx.set_output(2, DType::U8, {});
}

void dynamic_quantize_kernel(KernelContext& kc) {
  const Tensor& X = kc.in(0);
  const float* x = X.data<float>();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < X.numel(); ++i)
    if (!std::isnan(x[i])) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
  float scale = (hi - lo) / 255.0f;
  float zp = 0.0f;
  if (scale > 0.0f && std::isfinite(scale))
    zp = std::nearbyint(std::clamp(0.0f - lo / scale, 0.0f, 255.0f));
  else
    scale = 1.0f;  // all zeros (or an infinite range: every value saturates)
  uint8_t* y = kc.out(0).data<uint8_t>();
  quantize_run(igemm_isa() >= IgemmIsa::Avx2, x, X.numel(), scale, int32_t(zp), 0, 255, y);
  kc.out(1).data<float>()[0] = scale;
  kc.out(2).data<uint8_t>()[0] = uint8_t(zp);
}

}  // namespace

namespace qpt {
void QAddFloat::run(const uint8_t* a, const uint8_t* b, int64_t n, void* y) const {
#if defined(__GNUC__) && defined(__x86_64__)
  if (igemm_isa() >= IgemmIsa::Avx2) {
    const bool as8 = at == DType::I8, bs8 = bt == DType::I8;
    auto go = [&](auto ty) {
      using TY = decltype(ty);
      TY* yp = static_cast<TY*>(y);
      if (!as8 && !bs8) return qadd_avx2<false, false>(*this, a, b, n, yp);
      if (!as8 && bs8) return qadd_avx2<false, true>(*this, a, b, n, yp);
      if (as8 && !bs8) return qadd_avx2<true, false>(*this, a, b, n, yp);
      qadd_avx2<true, true>(*this, a, b, n, yp);
    };
    if (yt == DType::U8)
      go(uint8_t{});
    else
      go(int8_t{});
    return;
  }
#endif
  run_tables(a, b, n, y);
}

void quantize_floats(const float* x, int64_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                     DType out, void* y) {
  const bool simd = igemm_isa() >= IgemmIsa::Avx2;
  if (out == DType::U8)
    quantize_run(simd, x, n, scale, zp, qmin, qmax, static_cast<uint8_t*>(y));
  else
    quantize_run(simd, x, n, scale, zp, qmin, qmax, static_cast<int8_t*>(y));
}
}  // namespace qpt

void register_quantize_linear_ops(OpRegistry& r) {
  OpSchema dyn;
  dyn.op_type = "DynamicQuantizeLinear";
  dyn.min_inputs = 1;
  dyn.max_inputs = 1;
  dyn.min_outputs = 3;
  dyn.max_outputs = 3;
  dyn.infer = dynamic_quantize_infer;
  dyn.kernel = dynamic_quantize_kernel;
  r.add(std::move(dyn));

  OpSchema q;
  q.op_type = "QuantizeLinear";
  q.min_inputs = 2;
  q.max_inputs = 3;
  q.validate = validate_q;
  q.infer = quantize_infer;
  q.kernel = quantize_kernel;
  r.add(std::move(q));

  OpSchema dq;
  dq.op_type = "DequantizeLinear";
  dq.min_inputs = 2;
  dq.max_inputs = 3;
  dq.validate = validate_q;
  dq.infer = dequantize_infer;
  dq.kernel = dequantize_kernel;
  r.add(std::move(dq));
}

}  // namespace engine
