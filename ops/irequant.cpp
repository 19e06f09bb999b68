// SIMD requantization (see irequant.h): 8 int32 lanes per step with AVX2, and 16 with AVX-512 for
// per-channel rows on the avx512_vnni path. The fixed-point
// multiply follows quant/fixedpoint.h step by step:
//   - saturating left shift (exp > 0): compare against INT32_MAX >> left / INT32_MIN >> left;
//   - rounding doubling high multiply by q > 0: 64-bit products of the even and odd lanes
//     (vpmuldq), + 2^30, - 1 when the product is negative, then bits 31..62 (the truncating
//     division of the scalar code, written as a floor);
//   - rounding right shift: (x >> s) + (x & mask > (mask >> 1) + (x < 0)).
// The output zero point is added after clamping to [lo - zp, hi - zp] (equal to clamping
// zp + v to [lo, hi] for every int32 v); with a sum the two terms are added with int32
// saturation, which the clamp cannot tell from the int64 sum of the scalar code.
#include "ops/irequant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/simd_diagnostics.h"
#include "ops/igemm.h"
#include "ops/irequant_avx512.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define ENGINE_REQUANT_AVX2 1
#define ENGINE_TARGET_AVX2 __attribute__((target("avx2")))
#endif

namespace engine {
namespace {

#ifdef ENGINE_REQUANT_AVX2

constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();

// Vectors of fixed multipliers: one per lane (NHWC rows, one channel per lane) or one broadcast
// to every lane (a row of one channel). Lanes with no left / right shift have lsh / rsh = 0,
// over = INT32_MAX, mask = half = 0, so the shared code leaves them unchanged; q = 0 gives 0.
struct FixedV {
  bool any_left = false, any_right = false;
  __m256i q, lsh, rsh, over, under, mask, half;
};

ENGINE_TARGET_AVX2 inline FixedV fixed_v(quant::FixedMultiplier f) {
  const FixedLane l = fixed_lane(f);
  FixedV v{};
  v.any_left = l.lsh > 0;
  v.any_right = l.rsh > 0;
  v.q = _mm256_set1_epi32(l.q);
  v.lsh = _mm256_set1_epi32(l.lsh);
  v.rsh = _mm256_set1_epi32(l.rsh);
  v.over = _mm256_set1_epi32(l.over);
  v.under = _mm256_set1_epi32(l.under);
  v.mask = _mm256_set1_epi32(l.mask);
  v.half = _mm256_set1_epi32(l.half);
  return v;
}

// Bits 31..62 of p + 2^30 - (p < 0), in the low half of each 64-bit lane (shifted right) or in
// the high half (shifted left by one).
ENGINE_TARGET_AVX2 inline __m256i round_product(__m256i p) {
  const __m256i nudge = _mm256_set1_epi64x(int64_t(1) << 30);
  return _mm256_add_epi64(_mm256_add_epi64(p, nudge),
                          _mm256_cmpgt_epi64(_mm256_setzero_si256(), p));
}

// apply_multiplier on 8 lanes.
ENGINE_TARGET_AVX2 inline __m256i apply_fixed(__m256i x, const FixedV& f) {
  if (f.any_left) {
    const __m256i over = _mm256_cmpgt_epi32(x, f.over), under = _mm256_cmpgt_epi32(f.under, x);
    x = _mm256_sllv_epi32(x, f.lsh);
    x = _mm256_blendv_epi8(x, _mm256_set1_epi32(kI32Max), over);
    x = _mm256_blendv_epi8(x, _mm256_set1_epi32(kI32Min), under);
  }
  const __m256i even = round_product(_mm256_mul_epi32(x, f.q));
  // vpmuldq reads the low half of each 64-bit lane: the odd lanes of x and q are shifted there.
  const __m256i odd =
      round_product(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(f.q, 32)));
  __m256i h = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
  if (f.any_right) {
    const __m256i rem = _mm256_and_si256(h, f.mask);
    const __m256i thr = _mm256_sub_epi32(f.half, _mm256_srai_epi32(h, 31));  // + 1 if h < 0
    h = _mm256_srav_epi32(h, f.rsh);
    h = _mm256_sub_epi32(h, _mm256_cmpgt_epi32(rem, thr));  // + 1 if rem > thr
  }
  return h;
}

ENGINE_TARGET_AVX2 inline __m256i saturating_add(__m256i a, __m256i b) {
  const __m256i s = _mm256_add_epi32(a, b);
  // Overflow iff a and b have the same sign and s the other one; saturate toward a's sign.
  const __m256i ov = _mm256_and_si256(_mm256_xor_si256(a, s), _mm256_xor_si256(b, s));
  const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(a, 31), _mm256_set1_epi32(kI32Max));
  return _mm256_blendv_epi8(s, sat, _mm256_srai_epi32(ov, 31));
}

ENGINE_TARGET_AVX2 inline __m256i load8(const uint8_t* p, Q8Type t) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return t == Q8Type::U8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
}

// Stores 8 lanes holding values of type t (already in range) as bytes.
ENGINE_TARGET_AVX2 inline void store8(uint8_t* p, __m256i v, Q8Type t) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = t == Q8Type::U8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
}

struct RowV {
  FixedV fm, sfm;
  __m256i bias, szp, zp, lo, hi;  // lo / hi: the range minus the zero point
  __m256 m, sm, flo, fhi;
};

// The row-invariant vectors of r (fm / m / bias are set per row or per channel later).
ENGINE_TARGET_AVX2 RowV common_v(const RequantRow& r) {
  RowV v{};
  v.fm = fixed_v(r.fm);
  v.sfm = fixed_v(r.sum_fm);
  v.bias = _mm256_set1_epi32(r.bias);
  v.szp = _mm256_set1_epi32(r.sum_zp);
  v.zp = _mm256_set1_epi32(r.zp);
  v.lo = _mm256_set1_epi32(r.lo - r.zp);
  v.hi = _mm256_set1_epi32(r.hi - r.zp);
  v.m = _mm256_set1_ps(r.m);
  v.sm = _mm256_set1_ps(r.sum_m);
  v.flo = _mm256_set1_ps(float(r.lo - r.zp));
  v.fhi = _mm256_set1_ps(float(r.hi - r.zp));
  return v;
}

template <bool kFixed, bool kSum>
ENGINE_TARGET_AVX2 inline __m256i requant8(const RowV& v, const int32_t* acc, const uint8_t* sum,
                                           Q8Type st) {
  const __m256i x =
      _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc)), v.bias);
  __m256i ds = _mm256_setzero_si256();
  if (kSum) ds = _mm256_sub_epi32(load8(sum, st), v.szp);
  if (kFixed) {
    __m256i r = apply_fixed(x, v.fm);
    if (kSum) r = saturating_add(r, apply_fixed(ds, v.sfm));
    r = _mm256_min_epi32(_mm256_max_epi32(r, v.lo), v.hi);
    return _mm256_add_epi32(r, v.zp);
  }
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(x), v.m);
  if (kSum) {
    __m256 g = _mm256_mul_ps(_mm256_cvtepi32_ps(ds), v.sm);
    asm("" : "+x"(f), "+x"(g));  // two roundings, as the scalar code: never a fused multiply-add
    f = _mm256_add_ps(f, g);
  }
  // max(lo, f) / min(hi, f) pick f when it is NaN, as std::max(f, lo) / std::min(f, hi) do.
  f = _mm256_min_ps(v.fhi, _mm256_max_ps(v.flo, f));
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), v.zp);  // MXCSR rounding: ties to even
}

// The last rest < 8 values, through zero-padded buffers.
template <bool kFixed, bool kSum>
ENGINE_TARGET_AVX2 void requant_tail(const RowV& v, const int32_t* acc, int64_t rest, uint8_t* y,
                                     Q8Type yt, const uint8_t* sum, Q8Type st) {
  alignas(32) int32_t a[8] = {};
  alignas(16) uint8_t s[8] = {}, o[8];
  std::memcpy(a, acc, size_t(rest) * sizeof(int32_t));
  if (kSum) std::memcpy(s, sum, size_t(rest));
  store8(o, requant8<kFixed, kSum>(v, a, s, st), yt);
  std::memcpy(y, o, size_t(rest));
}

template <bool kFixed, bool kSum>
ENGINE_TARGET_AVX2 void requant_row(const RowV& v, const int32_t* acc, int64_t n, uint8_t* y,
                                    Q8Type yt, const uint8_t* sum, Q8Type st) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    store8(y + i, requant8<kFixed, kSum>(v, acc + i, (kSum ? sum + i : sum), st), yt);
  if (i < n) requant_tail<kFixed, kSum>(v, acc + i, n - i, y + i, yt, (kSum ? sum + i : sum), st);
}

ENGINE_TARGET_AVX2 bool requant_avx2(const RequantRow& r, const int32_t* acc, int64_t n, void* y,
                                     Q8Type yt, const void* sum, Q8Type st) {
  if (r.fixed && (!fixed_lane(r.fm).ok || !fixed_lane(r.sum_fm).ok)) return false;
  const RowV v = common_v(r);
  const auto* a = acc;
  auto* out = static_cast<uint8_t*>(y);
  const auto* s = static_cast<const uint8_t*>(sum);
  const bool has_sum = sum && st != Q8Type::None;
  if (r.fixed && has_sum) requant_row<true, true>(v, a, n, out, yt, s, st);
  if (r.fixed && !has_sum) requant_row<true, false>(v, a, n, out, yt, s, st);
  if (!r.fixed && has_sum) requant_row<false, true>(v, a, n, out, yt, s, st);
  if (!r.fixed && !has_sum) requant_row<false, false>(v, a, n, out, yt, s, st);
  return true;
}

ENGINE_TARGET_AVX2 inline __m256i load8i(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The constants of channels [c, c + 8).
ENGINE_TARGET_AVX2 inline void channel_v(const ChannelLanes& t, int64_t c, RowV& v) {
  v.bias = load8i(t.off + c);
  if (!t.fixed) {
    v.m = _mm256_loadu_ps(t.m + c);
    return;
  }
  v.fm.any_left = t.any_left;
  v.fm.any_right = t.any_right;
  v.fm.q = load8i(t.q + c);
  v.fm.lsh = load8i(t.lsh + c);
  v.fm.rsh = load8i(t.rsh + c);
  v.fm.over = load8i(t.over + c);
  v.fm.under = load8i(t.under + c);
  v.fm.mask = load8i(t.mask + c);
  v.fm.half = load8i(t.half + c);
}

template <bool kFixed, bool kSum>
ENGINE_TARGET_AVX2 void requant_channels(RowV& v, const ChannelLanes& t, int64_t c0,
                                         const int32_t* acc, int64_t n, uint8_t* y, Q8Type yt,
                                         const uint8_t* sum, Q8Type st) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    channel_v(t, c0 + i, v);
    store8(y + i, requant8<kFixed, kSum>(v, acc + i, (kSum ? sum + i : sum), st), yt);
  }
  if (i == n) return;
  channel_v(t, c0 + i, v);
  requant_tail<kFixed, kSum>(v, acc + i, n - i, y + i, yt, (kSum ? sum + i : sum), st);
}

ENGINE_TARGET_AVX2 void requant_channels_avx2(const ChannelLanes& t, int64_t c0, int64_t n,
                                              const ChannelTile& tile, Q8Type yt, Q8Type st) {
  RowV v = common_v(t.common);
  const bool has_sum = tile.sum && st != Q8Type::None;
  for (int64_t r = 0; r < tile.rows; ++r) {
    const int32_t* acc = tile.acc + r * tile.lda;
    uint8_t* out = static_cast<uint8_t*>(tile.y) + r * tile.ldy;
    const uint8_t* s = has_sum ? static_cast<const uint8_t*>(tile.sum) + r * tile.ldy : nullptr;
    if (t.fixed && has_sum) requant_channels<true, true>(v, t, c0, acc, n, out, yt, s, st);
    if (t.fixed && !has_sum) requant_channels<true, false>(v, t, c0, acc, n, out, yt, s, st);
    if (!t.fixed && has_sum) requant_channels<false, true>(v, t, c0, acc, n, out, yt, s, st);
    if (!t.fixed && !has_sum) requant_channels<false, false>(v, t, c0, acc, n, out, yt, s, st);
  }
}

// ---- AVX-512: 16 lanes of per-channel constants (NHWC rows), masked tails; the lane math is
// in irequant_avx512.h (shared with the GEMM micro-kernel that requantizes from registers).
// Channel blocks of 16 outer (their constants loaded once), rows inner.
ENGINE_SIMD_WARNINGS_OFF
template <bool kFixed, bool kSum>
ENGINE_TARGET_AVX512_RQ void requant_channels16(const ChannelLanes& t, int64_t c0, int64_t n,
                                                const ChannelTile& tile, Q8Type st) {
  using namespace rq16;
  const Common16 common = common16(t);
  auto* y = static_cast<uint8_t*>(tile.y);
  const auto* sum = static_cast<const uint8_t*>(tile.sum);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const Channel16 ch = channel16<kFixed>(t, c0 + i);
    for (int64_t row = 0; row < tile.rows; ++row) {
      // Unmasked loads of full vectors: the tile was just stored, and AMD Zen 4/5 do not
      // forward stores to masked loads.
      const int32_t* a = tile.acc + row * tile.lda + i;
      const __m512i acc = k == 0xFFFF ? load16i(a) : _mm512_maskz_loadu_epi32(k, a);
      __m512i ds = _mm512_setzero_si512();
      if (kSum) ds = sum_delta16(sum + row * tile.ldy + i, k, st, common);
      // The output is clamped to its type's range: its low bytes are the result.
      const __m128i b = low_bytes16(requant16<kFixed, kSum>(common, ch, acc, ds));
      if (k == 0xFFFF)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + row * tile.ldy + i), b);
      else
        _mm_mask_storeu_epi8(y + row * tile.ldy + i, k, b);
    }
  }
}

// The lean form (ChannelLanes::lean): zp + apply_multiplier in one rounding, the residual sum's
// terms (kTerms) from ChannelLanes::sum_lut for a tile of at most kTermRows x 64, the clamp to
// the output type by saturating packs (clamp: to a narrower range first).
constexpr int64_t kTermRows = 8;
template <bool kTerms>
ENGINE_TARGET_AVX512_RQ void requant_channels16_lean(const ChannelLanes& t, int64_t c0, int64_t n,
                                                     const ChannelTile& tile, Q8Type yt,
                                                     Q8Type st) {
  using namespace rq16;
  const Common16 common = common16(t);
  auto* y = static_cast<uint8_t*>(tile.y);
  alignas(64) int16_t terms[kTerms ? kTermRows : 1][64];
  if constexpr (kTerms)
    sum_terms_rows(static_cast<const uint8_t*>(tile.sum), tile.ldy, int(tile.rows), int(n),
                   t.sum_lut + (st == Q8Type::U8 ? 0 : 512), &terms[0][0]);
  const bool u8 = yt == Q8Type::U8, clamp = lean_clamps(t, yt);
  const __m512i first_bytes = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const Channel16 ch = channel16<true, true>(t, c0 + i);
    const __m512i off = load16i(t.off + c0 + i);
    for (int64_t row = 0; row < tile.rows; ++row) {
      // Unmasked loads of full vectors: the tile was just stored, and AMD Zen 4/5 do not
      // forward stores to masked loads.
      const int32_t* a = tile.acc + row * tile.lda + i;
      const __m512i acc = k == 0xFFFF ? load16i(a) : _mm512_maskz_loadu_epi32(k, a);
      __m512i o = apply_lean16(_mm512_add_epi32(acc, off), ch.fm, common.zp2);
      if constexpr (kTerms)
        o = _mm512_add_epi32(o, _mm512_cvtepi16_epi32(_mm256_loadu_si256(
                                    reinterpret_cast<const __m256i*>(terms[row] + i))));
      if (clamp) o = _mm512_min_epi32(_mm512_max_epi32(o, common.lo_abs), common.hi_abs);
      // Saturating packs: 128-bit lane j holds the bytes of o[4j..4j + 3] (4 times).
      const __m512i w = _mm512_packs_epi32(o, o);
      const __m128i b = _mm512_castsi512_si128(_mm512_permutexvar_epi32(
          first_bytes, u8 ? _mm512_packus_epi16(w, w) : _mm512_packs_epi16(w, w)));
      if (k == 0xFFFF)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + row * tile.ldy + i), b);
      else
        _mm_mask_storeu_epi8(y + row * tile.ldy + i, k, b);
    }
  }
}

ENGINE_TARGET_AVX512_RQ void requant_channels_avx512(const ChannelLanes& t, int64_t c0, int64_t n,
                                                     const ChannelTile& tile, Q8Type yt,
                                                     Q8Type st) {
  const bool has_sum = tile.sum && st != Q8Type::None;
  if (t.lean && !has_sum) return requant_channels16_lean<false>(t, c0, n, tile, yt, st);
  if (t.lean && t.sum_lut && has_sum && tile.rows <= kTermRows && n <= 64)
    return requant_channels16_lean<true>(t, c0, n, tile, yt, st);
  if (t.fixed && has_sum) requant_channels16<true, true>(t, c0, n, tile, st);
  if (t.fixed && !has_sum) requant_channels16<true, false>(t, c0, n, tile, st);
  if (!t.fixed && has_sum) requant_channels16<false, true>(t, c0, n, tile, st);
  if (!t.fixed && !has_sum) requant_channels16<false, false>(t, c0, n, tile, st);
}
ENGINE_SIMD_WARNINGS_ON

#endif  // ENGINE_REQUANT_AVX2

}  // namespace

FixedLane fixed_lane(quant::FixedMultiplier f) {
  FixedLane l;
  if (f.q == 0) return l;  // maps everything to 0
  l.ok = f.q > 0 && f.exp <= 30 && f.exp >= -31;
  if (!l.ok) return l;
  l.q = f.q;
  l.lsh = f.exp > 0 ? f.exp : 0;
  l.rsh = f.exp > 0 ? 0 : -f.exp;
  l.over = std::numeric_limits<int32_t>::max() >> l.lsh;
  l.under = std::numeric_limits<int32_t>::min() >> l.lsh;
  l.mask = int32_t((int64_t(1) << l.rsh) - 1);
  l.half = l.mask >> 1;
  return l;
}

ChannelLaneTables::ChannelLaneTables(const std::vector<RequantRow>& rows,
                                     const std::vector<int32_t>& off) {
  const size_t M = rows.size(), padded = M + 16;
  const bool fixed = M == 0 || rows[0].fixed;
  off_.assign(padded, 0);
  std::copy(off.begin(), off.begin() + std::ptrdiff_t(std::min(off.size(), M)), off_.begin());
  for (auto* v : {&q_, &lsh_, &rsh_, &under_, &mask_, &half_}) v->assign(padded, 0);
  over_.assign(padded, std::numeric_limits<int32_t>::max());
  m_.assign(padded, 0.0f);
  ChannelLanes& L = lanes_;
  bool below_half = true, short_shifts = true;
  L.fixed = fixed;
  if (M > 0) {
    L.common = rows[0];
    L.sum_lane = fixed_lane(rows[0].sum_fm);
  }
  for (size_t c = 0; c < M; ++c) {
    if (!fixed) {
      m_[c] = rows[c].m;
      if (!(rows[c].m >= 0.0f && rows[c].m < 0.5f)) below_half = false;
      continue;
    }
    const FixedLane l = fixed_lane(rows[c].fm);
    simd_ = simd_ && l.ok;
    q_[c] = l.q, lsh_[c] = l.lsh, rsh_[c] = l.rsh, over_[c] = l.over;
    under_[c] = l.under, mask_[c] = l.mask, half_[c] = l.half;
    L.any_left = L.any_left || l.lsh > 0;
    L.any_right = L.any_right || l.rsh > 0;
    // |apply_multiplier(x)| <= 2^30 for every int32 x: q = 0, or a right shift and no left one.
    if (l.q != 0 && (l.lsh != 0 || l.rsh < 1)) below_half = false;
    if (l.q != 0 && l.rsh > 22) short_shifts = false;
  }
  for (int parity = 0; parity < 2; ++parity) {
    nudge64_[parity].assign(padded / 2 + 1, fixed_nudge64(0));
    shift64_[parity].assign(padded / 2 + 1, fixed_shift64(0));
    for (size_t c = size_t(parity); c < padded; c += 2) {
      nudge64_[parity][c / 2] = fixed_nudge64(rsh_[c]);
      shift64_[parity][c / 2] = fixed_shift64(rsh_[c]);
    }
    L.nudge64[parity] = nudge64_[parity].data();
    L.shift64[parity] = shift64_[parity].data();
  }
  L.off = off_.data(), L.q = q_.data(), L.lsh = lsh_.data(), L.rsh = rsh_.data();
  L.over = over_.data(), L.under = under_.data(), L.mask = mask_.data(), L.half = half_.data();
  L.m = m_.data();
  L.float_lean = !fixed && M > 0 && below_half && std::abs(L.common.sum_m) < float(1 << 20);
  if (fixed && M > 0 && below_half) {
    build_sum_lut();
    if (short_shifts && L.common.zp >= 0) build_lean(M);
  }
}

void ChannelLaneTables::build_lean(size_t M) {
  ChannelLanes& L = lanes_;
  // < 2^61, so |x| q + nudge < 2^62 + 2^61 stays below 2^64.
  const auto zp_part = [&](size_t c) { return uint64_t(L.common.zp) << fixed_shift64(rsh_[c]); };
  for (int parity = 0; parity < 2; ++parity) {
    nudge64z_[parity] = nudge64_[parity];
    for (size_t c = size_t(parity); c < M + 16; c += 2) nudge64z_[parity][c / 2] += zp_part(c);
    L.nudge64z[parity] = nudge64z_[parity].data();
  }
  L.lean = true;
}

void ChannelLaneTables::build_sum_lut() {
#ifdef ENGINE_REQUANT_AVX2
  if (!__builtin_cpu_supports("avx512vbmi")) return;
  const RequantRow& r = lanes_.common;
  sum_lut_.assign(1024, 0);
  for (int type = 0; type < 2; ++type)
    for (int b = 0; b < 256; ++b) {
      const int32_t s = type == 0 ? b : int32_t(int8_t(uint8_t(b)));
      const int32_t t = quant::apply_multiplier(s - r.sum_zp, r.sum_fm);
      if (t < std::numeric_limits<int16_t>::min() || t > std::numeric_limits<int16_t>::max()) {
        sum_lut_.clear();
        return;
      }
      const auto u = uint16_t(int16_t(t));
      sum_lut_[size_t(512 * type + b)] = uint8_t(u & 0xFF);
      sum_lut_[size_t(512 * type + 256 + b)] = uint8_t(u >> 8);
    }
  lanes_.sum_lut = sum_lut_.data();
#endif
}

#ifdef ENGINE_REQUANT_AVX2
namespace {
// Word j of the first (second) 32 terms: bytes j and 64 + j (32 + j and 96 + j) of the low and
// high byte vectors side by side.
struct TermOrder {
  alignas(64) uint8_t v[2][64];
  constexpr TermOrder() : v{} {
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < 32; ++j) {
        v[h][2 * j] = uint8_t(32 * h + j);
        v[h][2 * j + 1] = uint8_t(64 + 32 * h + j);
      }
  }
};
constexpr TermOrder kTermOrderTable;
constexpr const uint8_t (&kTermOrder)[2][64] = kTermOrderTable.v;
}  // namespace

ENGINE_SIMD_WARNINGS_OFF
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vbmi"))) void sum_terms_rows(
    const uint8_t* sum, int64_t ldy, int rows, int n, const uint8_t* lut, int16_t* out) {
  __m512i lo[4], hi[4];  // the tables' 64-byte quarters
  for (int i = 0; i < 4; ++i) {
    lo[i] = _mm512_loadu_si512(lut + 64 * i);
    hi[i] = _mm512_loadu_si512(lut + 256 + 64 * i);
  }
  const __m512i w0 = _mm512_load_si512(kTermOrder[0]), w1 = _mm512_load_si512(kTermOrder[1]);
  const __mmask64 k = n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
  for (int r = 0; r < rows; ++r) {
    const __m512i s = _mm512_maskz_loadu_epi8(k, sum + r * ldy);
    const __mmask64 top = _mm512_movepi8_mask(s);  // bytes >= 128: the second half of a table
    const __m512i l = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(lo[0], s, lo[1]),
                                             _mm512_permutex2var_epi8(lo[2], s, lo[3]));
    const __m512i h = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(hi[0], s, hi[1]),
                                             _mm512_permutex2var_epi8(hi[2], s, hi[3]));
    _mm512_storeu_si512(out + 64 * r, _mm512_permutex2var_epi8(l, w0, h));
    _mm512_storeu_si512(out + 64 * r + 32, _mm512_permutex2var_epi8(l, w1, h));
  }
}
ENGINE_SIMD_WARNINGS_ON
#else
void sum_terms_rows(const uint8_t*, int64_t, int, int, const uint8_t*, int16_t*) {}
#endif

namespace {
// The SIMD path in use, or Reference (a bad ENGINE_ISA is reported by the GEMM, not here: these
// run inside OpenMP regions).
IgemmIsa simd_isa() {
  try {
    return igemm_isa();
  } catch (...) {
    return IgemmIsa::Reference;
  }
}

// The lanes the SIMD code takes (ChannelLaneTables::simd() checks the per-channel multipliers).
bool lanes_ok(const ChannelLanes& t, Q8Type yt) {
  return yt != Q8Type::None && t.common.lo <= t.common.hi && (!t.fixed || t.sum_lane.ok);
}
}  // namespace

bool requant_channels_fusable(const ChannelLanes& t, Q8Type yt) {
  return lanes_ok(t, yt) && simd_isa() == IgemmIsa::Avx512Vnni;
}

bool requant_channels_simd(const ChannelLanes& t, int64_t c0, int64_t n, const ChannelTile& tile,
                           Q8Type yt, Q8Type st) {
  if (!lanes_ok(t, yt)) return false;
#ifdef ENGINE_REQUANT_AVX2
  const IgemmIsa isa = simd_isa();
  if (isa == IgemmIsa::Avx512Vnni && c0 % 2 == 0) {  // the pair tables start at even channels
    requant_channels_avx512(t, c0, n, tile, yt, st);
    return true;
  }
  if (isa >= IgemmIsa::Avx2) {
    requant_channels_avx2(t, c0, n, tile, yt, st);
    return true;
  }
#endif
  (void)c0, (void)n, (void)tile, (void)st;
  return false;
}

bool requant_row_simd(const RequantRow& r, const int32_t* acc, int64_t n, void* y, Q8Type yt,
                      const void* sum, Q8Type st) {
  if (yt == Q8Type::None || r.lo > r.hi) return false;
#ifdef ENGINE_REQUANT_AVX2
  if (simd_isa() >= IgemmIsa::Avx2) return requant_avx2(r, acc, n, y, yt, sum, st);
#endif
  (void)acc, (void)n, (void)y, (void)sum, (void)st;
  return false;
}

}  // namespace engine
