// AVX-512 requantization of 16 int32 lanes that belong to 16 consecutive output channels
// (internal to the INT8 kernels): the per-channel path of requant_channels_simd (irequant.cpp)
// and the GEMM micro-kernel that requantizes its register tile directly (backends/x86/u8s8_gemm)
// share this code, so both are bit-identical to ChannelRequant by construction. Only for
// translation units that compile these functions with the AVX-512 target attribute below; the
// callers check the CPU first.
//
// Fixed mode: apply_multiplier of quant/fixedpoint.h. Both of its roundings are half away from
// zero, so it is odd: the magnitude goes through unsigned math (|INT_MIN| = 2^31 as uint32;
// |x| * q < 2^62) and the sign comes back at the end; the two roundings merge into one (Fixed16).
// The output zero point is added after clamping to [lo - zp, hi - zp] (equal to clamping zp + v to
// [lo, hi] for every int32 v); with a sum the two terms are added with int32 saturation, which the
// clamp cannot tell from the int64 sum of the scalar code. The lean form (ChannelLanes::lean:
// every |apply_multiplier(x)| <= 2^30, zp >= 0) adds zp in the rounding and leaves the clamp to
// the caller's saturating packs; a residual sum's term then comes from ChannelLanes::sum_lut, and
// nothing can overflow. Float mode: float(acc) * m [+ float(sum - sum_zp) * sum_m] (two
// roundings, never an FMA), clamped, converted with the MXCSR rounding (ties to even).
#pragma once

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "core/simd_diagnostics.h"
#include "ops/irequant.h"

#define ENGINE_TARGET_AVX512_RQ __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))
#define ENGINE_INLINE_AVX512_RQ \
  inline __attribute__((always_inline, target("avx2,avx512f,avx512bw,avx512vl")))

ENGINE_SIMD_WARNINGS_OFF

namespace engine::rq16 {

// A fixed multiplier on 16 lanes. qo: q >> 32 (the odd lanes' multiplier). The high multiply and
// the rounding right shift are one rounding: with h = floor((|x| q + 2^30) / 2^31) (the rounding
// doubling high multiply on magnitudes), floor((h + 2^(rsh-1)) / 2^rsh) equals
// floor((|x| q + 2^30 + 2^(30+rsh)) / 2^(31+rsh)) (nested floors of integer shifts merge), so
// each 64-bit product gets one add of nudge and one shift (< 2^63: no overflow). _e / _o: the
// 64-bit constants of the even / odd lanes' channels.
struct Fixed16 {
  bool any_left = false;
  bool small_x = false;  // |x| < 2^9 and lsh <= 22: x << lsh cannot overflow
  __m512i q, qo, lsh, over, under, nudge_e, nudge_o, sh_e, sh_o;
};

// floor((a q + nudge) / 2^shift) per lane of a = |x| (as uint32): the magnitude of the fixed
// multiply, in one rounding.
ENGINE_INLINE_AVX512_RQ __m512i fixed_magnitude16(__m512i a, const Fixed16& f) {
  const __m512i even =
      _mm512_srlv_epi64(_mm512_add_epi64(_mm512_mul_epu32(a, f.q), f.nudge_e), f.sh_e);
  const __m512i odd = _mm512_srlv_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a, 32), f.qo), f.nudge_o), f.sh_o);
  // The low dwords of even and odd, interleaved.
  const __m512i pick = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
  return _mm512_permutex2var_epi32(even, pick, odd);
}

ENGINE_INLINE_AVX512_RQ __m512i apply_fixed16(__m512i x, const Fixed16& f) {
  if (f.any_left && f.small_x) {
    x = _mm512_sllv_epi32(x, f.lsh);
  } else if (f.any_left) {
    const __mmask16 over = _mm512_cmpgt_epi32_mask(x, f.over);
    const __mmask16 under = _mm512_cmplt_epi32_mask(x, f.under);
    x = _mm512_sllv_epi32(x, f.lsh);
    x = _mm512_mask_mov_epi32(x, over, _mm512_set1_epi32(std::numeric_limits<int32_t>::max()));
    x = _mm512_mask_mov_epi32(x, under, _mm512_set1_epi32(std::numeric_limits<int32_t>::min()));
  }
  const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
  const __m512i h = fixed_magnitude16(_mm512_abs_epi32(x), f);
  return _mm512_mask_sub_epi32(h, neg, _mm512_setzero_si512(), h);
}

// The lean form (ChannelLanes::lean; f's nudges from nudge64z): zp + apply_multiplier(x) with
// zp2 = 2 zp. The magnitude comes out as h + zp (zp * 2^shift is in the nudge), and a negative
// x gives 2 zp - (h + zp) = zp - h.
ENGINE_INLINE_AVX512_RQ __m512i apply_lean16(__m512i x, const Fixed16& f, __m512i zp2) {
  const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
  const __m512i h = fixed_magnitude16(_mm512_abs_epi32(x), f);
  return _mm512_mask_sub_epi32(h, neg, zp2, h);
}

ENGINE_INLINE_AVX512_RQ __m512i saturating_add16(__m512i a, __m512i b) {
  const __m512i s = _mm512_add_epi32(a, b);
  const __m512i ov = _mm512_and_si512(_mm512_xor_si512(a, s), _mm512_xor_si512(b, s));
  const __m512i sat = _mm512_xor_si512(_mm512_srai_epi32(a, 31),
                                       _mm512_set1_epi32(std::numeric_limits<int32_t>::max()));
  return _mm512_mask_mov_epi32(s, _mm512_cmplt_epi32_mask(ov, _mm512_setzero_si512()), sat);
}

// What every lane shares: the sum's multiplier and zero point, the output range and zero point.
// The sum minus its zero point is a difference of two 8-bit values (|x| <= 383 < 2^9), so its
// left shifts up to 22 need no overflow checks.
struct Common16 {
  Fixed16 sfm;
  __m512i szp, zp, lo, hi;
  __m512i zp2, lo_abs, hi_abs;  // the lean form: 2 zp, and the output range itself
  __m512 sm, flo, fhi;
};

ENGINE_INLINE_AVX512_RQ Common16 common16(const ChannelLanes& t) {
  const RequantRow& r = t.common;
  const FixedLane& l = t.sum_lane;
  Common16 c;
  c.sfm.small_x = l.lsh <= 22;
  c.sfm.any_left = l.lsh > 0;
  c.sfm.q = _mm512_set1_epi32(l.q);
  c.sfm.qo = c.sfm.q;
  c.sfm.lsh = _mm512_set1_epi32(l.lsh);
  c.sfm.over = _mm512_set1_epi32(l.over);
  c.sfm.under = _mm512_set1_epi32(l.under);
  c.sfm.nudge_e = c.sfm.nudge_o = _mm512_set1_epi64(int64_t(fixed_nudge64(l.rsh)));
  c.sfm.sh_e = c.sfm.sh_o = _mm512_set1_epi64(int64_t(fixed_shift64(l.rsh)));
  c.szp = _mm512_set1_epi32(r.sum_zp);
  c.zp = _mm512_set1_epi32(r.zp);
  c.lo = _mm512_set1_epi32(r.lo - r.zp);
  c.hi = _mm512_set1_epi32(r.hi - r.zp);
  c.zp2 = _mm512_set1_epi32(2 * r.zp);
  c.lo_abs = _mm512_set1_epi32(r.lo);
  c.hi_abs = _mm512_set1_epi32(r.hi);
  c.sm = _mm512_set1_ps(r.sum_m);
  c.flo = _mm512_set1_ps(float(r.lo - r.zp));
  c.fhi = _mm512_set1_ps(float(r.hi - r.zp));
  return c;
}

// The constants of channels [c, c + 16) (c even): the accumulator offset and the multipliers.
struct Channel16 {
  __m512i off;
  Fixed16 fm;
  __m512 m;
};

ENGINE_INLINE_AVX512_RQ __m512i load16i(const int32_t* p) {
  return _mm512_loadu_si512(p);
}

// kLean: the nudges of the lean form (ChannelLanes::nudge64z).
template <bool kFixed, bool kLean = false>
ENGINE_INLINE_AVX512_RQ Channel16 channel16(const ChannelLanes& t, int64_t c) {
  Channel16 ch;
  if (!kLean) ch.off = load16i(t.off + c);  // the lean kernels start their sums at off
  ch.fm.any_left = t.any_left;
  if (kFixed) {
    const uint64_t* const* nudge = kLean ? t.nudge64z : t.nudge64;
    ch.fm.q = load16i(t.q + c);
    ch.fm.qo = _mm512_srli_epi64(ch.fm.q, 32);
    ch.fm.nudge_e = _mm512_loadu_si512(nudge[0] + c / 2);
    ch.fm.nudge_o = _mm512_loadu_si512(nudge[1] + c / 2);
    ch.fm.sh_e = _mm512_loadu_si512(t.shift64[0] + c / 2);
    ch.fm.sh_o = _mm512_loadu_si512(t.shift64[1] + c / 2);
    if (t.any_left) {
      ch.fm.lsh = load16i(t.lsh + c);
      ch.fm.over = load16i(t.over + c);
      ch.fm.under = load16i(t.under + c);
    }
  } else {
    ch.m = _mm512_loadu_ps(t.m + c);
  }
  return ch;
}

// sum - sum_zp for 16 (k: the lanes in use) sum bytes of type st.
ENGINE_INLINE_AVX512_RQ __m512i sum_delta16(const uint8_t* p, __mmask16 k, Q8Type st,
                                            const Common16& c) {
  const __m128i b = k == 0xFFFF ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                                : _mm_maskz_loadu_epi8(k, p);
  return _mm512_sub_epi32(st == Q8Type::U8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b),
                          c.szp);
}

// The 16 output values (in range, as int32) of accumulators acc (before the offset) and sum
// deltas ds (kSum).
template <bool kFixed, bool kSum>
ENGINE_INLINE_AVX512_RQ __m512i requant16(const Common16& c, const Channel16& ch, __m512i acc,
                                          __m512i ds) {
  const __m512i x = _mm512_add_epi32(acc, ch.off);
  if (kFixed) {
    __m512i v = apply_fixed16(x, ch.fm);
    if (kSum) v = saturating_add16(v, apply_fixed16(ds, c.sfm));
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, c.lo), c.hi), c.zp);
  }
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), ch.m);
  if (kSum) {
    __m512 g = _mm512_mul_ps(_mm512_cvtepi32_ps(ds), c.sm);
    asm("" : "+v"(f), "+v"(g));  // two roundings, as the scalar code: never an FMA
    f = _mm512_add_ps(f, g);
  }
  f = _mm512_min_ps(c.fhi, _mm512_max_ps(c.flo, f));     // NaN-free: f comes from integers
  return _mm512_add_epi32(_mm512_cvtps_epi32(f), c.zp);  // MXCSR rounding: ties to even
}

// Fixed mode with the sum's terms t already computed (ChannelLanes::sum_lut: the two terms add
// without overflow).
ENGINE_INLINE_AVX512_RQ __m512i requant16_term(const Common16& c, const Channel16& ch, __m512i acc,
                                               __m512i t) {
  const __m512i v = _mm512_add_epi32(apply_fixed16(_mm512_add_epi32(acc, ch.off), ch.fm), t);
  return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, c.lo), c.hi), c.zp);
}

// Float mode's lean form (ChannelLanes::float_lean): zp + the rounded product, not clamped (the
// caller's saturating packs clamp; equal to rounding the clamped value, as the clamp bounds are
// integers). acc already holds the accumulator offset.
template <bool kSum>
ENGINE_INLINE_AVX512_RQ __m512i requant16_float_lean(const Common16& c, const Channel16& ch,
                                                     __m512i acc, __m512i ds) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), ch.m);
  if (kSum) {
    __m512 g = _mm512_mul_ps(_mm512_cvtepi32_ps(ds), c.sm);
    asm("" : "+v"(f), "+v"(g));  // two roundings, as the scalar code: never an FMA
    f = _mm512_add_ps(f, g);
  }
  return _mm512_add_epi32(_mm512_cvtps_epi32(f), c.zp);  // MXCSR rounding: ties to even
}

// The low bytes of 16 in-range int32 values. VPSHUFB + VPERMD gather them; VPMOV(U)SDB is slow
// on AMD Zen 4/5 (a fifth of a mobilenet_v2 run).
ENGINE_INLINE_AVX512_RQ __m128i low_bytes16(__m512i v) {
  const __m512i low_bytes = _mm512_broadcast_i32x4(
      _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m512i low_dwords = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si128(
      _mm512_permutexvar_epi32(low_dwords, _mm512_shuffle_epi8(v, low_bytes)));
}

}  // namespace engine::rq16

ENGINE_SIMD_WARNINGS_ON

#endif
