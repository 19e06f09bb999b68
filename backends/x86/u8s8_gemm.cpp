// u8 x s8 GEMM (see u8s8_gemm.h). One call computes all rows of A against a range of column
// panels: panel outer (its packed weights, at most Kp x 64 bytes, stay in L2 while every row
// group runs over them), row groups of the tile height inner. The micro-kernels keep the whole
// tile in registers over all of K and store it once; the caller requantizes it (TileSink) while
// it is still in L1. On avx512_vnni with a FusedOutput, full tiles skip that round trip: the
// micro-kernel requantizes its registers and stores output bytes (for K = 64 the int32 store,
// reload and sink call cost as much as the dot products). Rows past the end of A are computed
// from a zero-padded copy.
#include "backends/x86/u8s8_gemm.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/simd_diagnostics.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define ENGINE_U8S8_X86 1
#define ENGINE_TARGET_AVX2 __attribute__((target("avx2")))
#define ENGINE_TARGET_AVXVNNI __attribute__((target("avx2,avxvnni")))
#define ENGINE_TARGET_VNNI __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#include "ops/irequant_avx512.h"
#endif

namespace engine::x86 {
namespace {

int64_t round_up(int64_t a, int64_t b) {
  return (a + b - 1) / b * b;
}

// 4 bytes of A as one int32 (unaligned).
inline int32_t quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The A rows of one tile: row r is the concatenation over t < taps of tq quads (4 bytes) at
// ptr(r, t). Direct rows: taps = 1, row r at A + r * lda. Indirect rows: ind[r * taps + t].
struct TileRows {
  const uint8_t* A = nullptr;
  int64_t lda = 0;
  const uint8_t* const* ind = nullptr;
  int64_t taps = 1, tq = 0;
  const uint8_t* ptr(int64_t r, int64_t t) const { return ind ? ind[r * taps + t] : A + r * lda; }
  TileRows from(int64_t r0) const {  // the rows from r0 on
    TileRows a = *this;
    if (ind)
      a.ind += r0 * taps;
    else
      a.A += r0 * lda;
    return a;
  }
};

// What a requantizing micro-kernel does after its dot products: float or fixed mode, with or
// without a residual sum; Terms: the sum's fixed-point terms from ChannelLanes::sum_lut, looked
// up before the dot products while registers are free (instead of a 64-bit multiply and a
// saturating add per output); Lean*: ChannelLanes::lean: the sums
// start at the accumulator offset, the zero point comes with the rounding and the output type's
// range from the saturating packs (Clamp: a narrower range, clamped first).
enum class Rq {
  Float,
  FloatSum,
  Fixed,
  FixedSum,
  FixedTerms,
  Lean,
  LeanClamp,
  LeanTerms,
  LeanTermsClamp,
  FloatLean,
  FloatLeanClamp,
  FloatLeanSum,
  FloatLeanSumClamp,
  Count
};

// Micro-kernel: C[MR x W] = A[MR rows] x panel (W = lanes * NV columns), overwritten.
using Micro = void (*)(const TileRows& a, const int8_t* B, int32_t* C, int64_t ldc);

#ifdef ENGINE_U8S8_X86

// acc += dot4(a u8, b s8) per lane. Inline assembly: GCC 12 copies the accumulator of the
// intrinsic (its destination is also a source) and spills the tile.
ENGINE_TARGET_VNNI inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// The register tile s = init + A[MR rows] x panel (NV vectors of 16 columns); init: a row of
// NV x 16 int32 added to every row (null: zeros).
template <int MR, int NV>
__attribute__((always_inline)) ENGINE_TARGET_VNNI inline void tile_zmm(
    __m512i (&s)[MR][NV], const TileRows& a, const int8_t* B, const int32_t* init = nullptr) {
  for (int v = 0; v < NV; ++v) {
    const __m512i i0 = init ? _mm512_loadu_si512(init + 16 * v) : _mm512_setzero_si512();
    for (int r = 0; r < MR; ++r) s[r][v] = i0;
  }
  for (int64_t t = 0; t < a.taps; ++t) {
    const uint8_t* p[MR];
    for (int r = 0; r < MR; ++r) p[r] = a.ptr(r, t);
    for (int64_t q = 0; q < a.tq; ++q) {
      __m512i b[NV];
      for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(B + 64 * v);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512i x = _mm512_set1_epi32(quad(p[r] + 4 * q));
        for (int v = 0; v < NV; ++v) s[r][v] = dpbusd(s[r][v], x, b[v]);
      }
      B += 64 * NV;
    }
  }
}

template <int MR, int NV>
ENGINE_TARGET_VNNI void micro_zmm(const TileRows& a, const int8_t* B, int32_t* C, int64_t ldc) {
  __m512i s[MR][NV];
  tile_zmm<MR, NV>(s, a, B);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_si512(C + r * ldc + 16 * v, s[r][v]);
}

// The same tile requantized from the registers into y (columns c0.. of f, rows at y + r * ldy);
// sum: the residual input of these outputs.
ENGINE_SIMD_WARNINGS_OFF
template <int MR, int NV, Rq K>
ENGINE_TARGET_VNNI void micro_zmm_rq(const TileRows& a, const int8_t* B, const FusedOutput& f,
                                     int64_t c0, uint8_t* y, const uint8_t* sum) {
  using namespace rq16;
  constexpr bool kFloatLean = K == Rq::FloatLean || K == Rq::FloatLeanClamp ||
                              K == Rq::FloatLeanSum || K == Rq::FloatLeanSumClamp;
  constexpr bool kLean = kFloatLean || K == Rq::Lean || K == Rq::LeanClamp || K == Rq::LeanTerms ||
                         K == Rq::LeanTermsClamp;
  constexpr bool kTerms = K == Rq::FixedTerms || K == Rq::LeanTerms || K == Rq::LeanTermsClamp;
  constexpr bool kFixed = K != Rq::Float && K != Rq::FloatSum && !kFloatLean;
  constexpr bool kSum = K == Rq::FloatSum || K == Rq::FixedSum || kTerms || K == Rq::FloatLeanSum ||
                        K == Rq::FloatLeanSumClamp;
  constexpr bool kClamp = !kLean || K == Rq::LeanClamp || K == Rq::LeanTermsClamp ||
                          K == Rq::FloatLeanClamp || K == Rq::FloatLeanSumClamp;
  alignas(64) int16_t terms[kTerms ? MR : 1][64];
  if constexpr (kTerms)
    sum_terms_rows(sum, f.ldy, MR, 16 * NV, f.lanes->sum_lut + (f.sum_type == Q8Type::U8 ? 0 : 512),
                   &terms[0][0]);
  __m512i s[MR][NV];
  tile_zmm<MR, NV>(s, a, B, kLean ? f.lanes->off + c0 : nullptr);
  const Common16 c = common16(*f.lanes);
  // Fully unrolled, so that s stays in registers: each accumulator is replaced by its output
  // value (in range, int32; the lean form: possibly out of range when not kClamp).
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const Channel16 ch = channel16 < kFixed, kLean && kFixed > (*f.lanes, c0 + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m512i t = _mm512_setzero_si512();
      if constexpr (kTerms)
        t = _mm512_cvtepi16_epi32(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(terms[r] + 16 * v)));
      if constexpr (kFloatLean) {
        __m512i ds = _mm512_setzero_si512();
        if (kSum) ds = sum_delta16(sum + r * f.ldy + 16 * v, 0xFFFF, f.sum_type, c);
        __m512i o = requant16_float_lean<kSum>(c, ch, s[r][v], ds);
        if (kClamp) o = _mm512_min_epi32(_mm512_max_epi32(o, c.lo_abs), c.hi_abs);
        s[r][v] = o;
      } else if constexpr (kLean) {
        __m512i o = apply_lean16(s[r][v], ch.fm, c.zp2);
        if (kTerms) o = _mm512_add_epi32(o, t);
        if (kClamp) o = _mm512_min_epi32(_mm512_max_epi32(o, c.lo_abs), c.hi_abs);
        s[r][v] = o;
      } else if constexpr (kTerms) {
        s[r][v] = requant16_term(c, ch, s[r][v], t);
      } else {
        __m512i ds = _mm512_setzero_si512();
        if (kSum) ds = sum_delta16(sum + r * f.ldy + 16 * v, 0xFFFF, f.sum_type, c);
        s[r][v] = requant16<kFixed, kSum>(c, ch, s[r][v], ds);
      }
    }
  }
  if constexpr (NV == 4 || kLean) {
    // A row's 64 values (NV < 4: the last vector repeated) to bytes: two dword -> word packs and
    // one word -> byte pack (they saturate: the lean form's clamp to the type's range), which
    // leave 128-bit lane k holding dwords v0[4k..], v1[4k..], v2[4k..], v3[4k..]; one VPERMD
    // restores the order; the first 16 NV bytes are stored.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const bool u8 = f.y_type == Q8Type::U8;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i w01 = _mm512_packs_epi32(s[r][0], s[r][NV > 1 ? 1 : 0]);
      const __m512i w23 = _mm512_packs_epi32(s[r][NV > 2 ? 2 : NV - 1], s[r][NV - 1]);
      const __m512i b = _mm512_permutexvar_epi32(
          order, u8 ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23));
      uint8_t* o = y + r * f.ldy;
      if constexpr (NV == 4) {
        _mm512_storeu_si512(o, b);
      } else if constexpr (NV == 1) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_castsi512_si128(b));
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm512_castsi512_si256(b));
        if constexpr (NV == 3)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 32), _mm512_extracti32x4_epi32(b, 2));
      }
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + r * f.ldy + 16 * v), low_bytes16(s[r][v]));
  }
}
ENGINE_SIMD_WARNINGS_ON

ENGINE_TARGET_AVXVNNI inline __m256i dpbusd_vex(__m256i acc, __m256i a, __m256i b) {
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
  return acc;
}

template <int MR, int NV>
ENGINE_TARGET_AVXVNNI void micro_ymm_vnni(const TileRows& a, const int8_t* B, int32_t* C,
                                          int64_t ldc) {
  __m256i s[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) s[r][v] = _mm256_setzero_si256();
  for (int64_t t = 0; t < a.taps; ++t) {
    const uint8_t* p[MR];
    for (int r = 0; r < MR; ++r) p[r] = a.ptr(r, t);
    for (int64_t q = 0; q < a.tq; ++q) {
      __m256i b[NV];
      for (int v = 0; v < NV; ++v)
        b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 32 * v));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256i x = _mm256_set1_epi32(quad(p[r] + 4 * q));
        for (int v = 0; v < NV; ++v) s[r][v] = dpbusd_vex(s[r][v], x, b[v]);
      }
      B += 32 * NV;
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(C + r * ldc + 8 * v), s[r][v]);
}

// Without VNNI: each int32 lane holds 4 bytes; as int16 pairs, the even bytes (0, 2) and the odd
// bytes (1, 3) are multiplied separately with VPMADDWD (exact int32 pair sums) and added.
template <int MR, int NV>
ENGINE_TARGET_AVX2 void micro_ymm_avx2(const TileRows& a, const int8_t* B, int32_t* C,
                                       int64_t ldc) {
  __m256i s[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) s[r][v] = _mm256_setzero_si256();
  const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
  for (int64_t t = 0; t < a.taps; ++t) {
    const uint8_t* p[MR];
    for (int r = 0; r < MR; ++r) p[r] = a.ptr(r, t);
    for (int64_t q = 0; q < a.tq; ++q) {
      __m256i be[NV], bo[NV];
      for (int v = 0; v < NV; ++v) {
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 32 * v));
        be[v] = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);  // sign-extended bytes 0, 2
        bo[v] = _mm256_srai_epi16(b, 8);                        // sign-extended bytes 1, 3
      }
      for (int r = 0; r < MR; ++r) {
        const __m256i x = _mm256_set1_epi32(quad(p[r] + 4 * q));
        const __m256i xe = _mm256_and_si256(x, low_bytes), xo = _mm256_srli_epi16(x, 8);
        for (int v = 0; v < NV; ++v)
          s[r][v] = _mm256_add_epi32(s[r][v], _mm256_add_epi32(_mm256_madd_epi16(xe, be[v]),
                                                               _mm256_madd_epi16(xo, bo[v])));
      }
      B += 32 * NV;
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(C + r * ldc + 8 * v), s[r][v]);
}

#endif  // ENGINE_U8S8_X86

// Micro-kernel that requantizes its tile (micro_zmm_rq).
using MicroRq = void (*)(const TileRows& a, const int8_t* B, const FusedOutput& f, int64_t c0,
                         uint8_t* y, const uint8_t* sum);

// A path: tile height, lane width, panel width and the micro-kernel per number of vectors.
struct Path {
  int mr = 1, lane = 1, nv = 1;
  Micro micro[5] = {};                 // index: vectors in the panel (1..nv)
  MicroRq rq[int(Rq::Count)][5] = {};  // [kind][vectors]; avx512_vnni only
};

// The micro-kernel kind for a fused output (has_sum: it adds a residual input).
Rq rq_kind(const FusedOutput& f, bool has_sum) {
  const ChannelLanes& L = *f.lanes;
  if (!L.fixed && L.float_lean) {
    const bool clamp = lean_clamps(L, f.y_type);
    if (has_sum) return clamp ? Rq::FloatLeanSumClamp : Rq::FloatLeanSum;
    return clamp ? Rq::FloatLeanClamp : Rq::FloatLean;
  }
  if (!L.fixed) return has_sum ? Rq::FloatSum : Rq::Float;
  const bool terms = has_sum && L.sum_lut;
  if (has_sum && !terms) return Rq::FixedSum;
  if (!L.lean) return terms ? Rq::FixedTerms : Rq::Fixed;
  const bool clamp = lean_clamps(L, f.y_type);
  if (terms) return clamp ? Rq::LeanTermsClamp : Rq::LeanTerms;
  return clamp ? Rq::LeanClamp : Rq::Lean;
}

#ifdef ENGINE_U8S8_X86
template <Rq K>
void set_rq(Path& p) {
  MicroRq* m = p.rq[int(K)];
  m[1] = micro_zmm_rq<6, 1, K>, m[2] = micro_zmm_rq<6, 2, K>;
  m[3] = micro_zmm_rq<6, 3, K>, m[4] = micro_zmm_rq<6, 4, K>;
}
#endif

Path path_for(IgemmIsa isa) {
  Path p;
#ifdef ENGINE_U8S8_X86
  if (isa == IgemmIsa::Avx512Vnni) {
    p.mr = 6, p.lane = 16, p.nv = 4;
    p.micro[1] = micro_zmm<6, 1>, p.micro[2] = micro_zmm<6, 2>;
    p.micro[3] = micro_zmm<6, 3>, p.micro[4] = micro_zmm<6, 4>;
    set_rq<Rq::Float>(p), set_rq<Rq::FloatSum>(p), set_rq<Rq::Fixed>(p);
    set_rq<Rq::FixedSum>(p), set_rq<Rq::FixedTerms>(p);
    set_rq<Rq::Lean>(p), set_rq<Rq::LeanClamp>(p);
    set_rq<Rq::LeanTerms>(p), set_rq<Rq::LeanTermsClamp>(p);
    set_rq<Rq::FloatLean>(p), set_rq<Rq::FloatLeanClamp>(p);
    set_rq<Rq::FloatLeanSum>(p), set_rq<Rq::FloatLeanSumClamp>(p);
  } else if (isa == IgemmIsa::AvxVnni) {
    p.mr = 6, p.lane = 8, p.nv = 2;
    p.micro[1] = micro_ymm_vnni<6, 1>, p.micro[2] = micro_ymm_vnni<6, 2>;
  } else if (isa == IgemmIsa::Avx2) {
    p.mr = 4, p.lane = 8, p.nv = 2;
    p.micro[1] = micro_ymm_avx2<4, 1>, p.micro[2] = micro_ymm_avx2<4, 2>;
  }
#endif
  (void)isa;
  return p;
}

// Reference tile: rows x cols of C from the plain weights.
void reference_tile(const U8s8Weights& w, const int8_t* plain, int64_t M, const TileRows& A,
                    int64_t rows, int64_t c0, int64_t cols, int32_t* C, int64_t ldc) {
  const int64_t tap_bytes = 4 * A.tq;
  for (int64_t r = 0; r < rows; ++r) {
    uint32_t* c = reinterpret_cast<uint32_t*>(C + r * ldc);
    std::fill(c, c + cols, 0u);
    for (int64_t k = 0; k < w.depth(); ++k) {
      const int32_t a = A.ptr(r, k / tap_bytes)[k % tap_bytes];
      const int8_t* b = plain + k * M + c0;
      for (int64_t j = 0; j < cols; ++j) c[j] += uint32_t(a * int32_t(b[j]));
    }
  }
}

}  // namespace

U8s8Weights::U8s8Weights(int64_t K, int64_t M, const int8_t* w, int64_t ldw)
    : K_(K), M_(M), isa_(igemm_isa()) {
  ENGINE_CHECK(K > 0 && M > 0 && ldw >= M, "u8s8 GEMM: bad weight sizes K=", K, " M=", M);
  Kp_ = round_up(K, 4);
  if (isa_ == IgemmIsa::Reference) {
    plain_.resize(size_t(K * M));
    for (int64_t k = 0; k < K; ++k) std::copy(w + k * ldw, w + k * ldw + M, &plain_[size_t(k * M)]);
    for (int64_t c = 64; c < M; c += 64) panel_start_.push_back(c);
    panel_start_.push_back(M);
    return;
  }
  const Path p = path_for(isa_);
  const int64_t panel = int64_t(p.lane) * p.nv, Mp = round_up(M, p.lane);
  for (int64_t c = panel; c < Mp; c += panel) panel_start_.push_back(c);
  panel_start_.push_back(Mp);
  packed_.assign(size_t(Kp_ * Mp), 0);
  for (size_t pi = 0; pi + 1 < panel_start_.size(); ++pi) {
    const int64_t c0 = panel_start_[pi], width = panel_start_[pi + 1] - c0;
    int8_t* d = packed_.data() + Kp_ * c0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < width && c0 + j < M; ++j)
        d[(k / 4) * width * 4 + j * 4 + k % 4] = w[k * ldw + c0 + j];
  }
}

int64_t U8s8Gemm::row_tile(const U8s8Weights& w) {
  return w.isa() == IgemmIsa::Reference ? 8 : path_for(w.isa()).mr;
}

namespace {

// C for rows [0, rows) of `all` x panels [p0, p1) (see U8s8Gemm::run).
void run_rows(const U8s8Weights& w, const TileRows& all, int64_t rows, int64_t p0, int64_t p1,
              TileSink sink, void* ctx, const FusedOutput* fused) {
  if (rows <= 0) return;
  constexpr int64_t kMaxTile = 8 * 64;
  alignas(64) int32_t tile[kMaxTile];
  if (w.isa() == IgemmIsa::Reference) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = w.panel_begin(p), cols = w.panel_end(p) - c0;
      for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        const int64_t nr = std::min<int64_t>(8, rows - r0);
        reference_tile(w, w.plain(), w.cols(), all.from(r0), nr, c0, cols, tile, 64);
        sink(ctx, r0, nr, c0, cols, tile, 64);
      }
    }
    return;
  }
  const Path path = path_for(w.isa());
  const int64_t mr = path.mr, Kp = w.padded_depth();
  // The last, partial row group, padded to mr rows: direct rows are copied next to zero rows,
  // indirect ones repeat the pointers of its last row (those rows' results are not used).
  thread_local std::vector<uint8_t> tail;
  thread_local std::vector<const uint8_t*> tail_ind;
  const int64_t full = rows / mr * mr;
  TileRows last = all.from(full);
  if (full < rows && all.ind) {
    tail_ind.resize(size_t(mr * all.taps));
    for (int64_t r = 0; r < mr; ++r)
      std::copy(last.ind + std::min(r, rows - full - 1) * all.taps,
                last.ind + (std::min(r, rows - full - 1) + 1) * all.taps,
                tail_ind.begin() + r * all.taps);
    last.ind = tail_ind.data();
  } else if (full < rows) {
    tail.assign(size_t(mr * Kp), 0);
    for (int64_t r = full; r < rows; ++r)
      std::memcpy(&tail[size_t((r - full) * Kp)], all.A + r * all.lda, size_t(Kp));
    last.A = tail.data(), last.lda = Kp;
  }
  const bool has_sum = fused && fused->sum && fused->sum_type != Q8Type::None;
  const MicroRq* rq = fused ? path.rq[int(rq_kind(*fused, has_sum))] : nullptr;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c0 = w.panel_begin(p), width = w.panel_width(p);
    const int64_t cols = w.panel_end(p) - c0;
    const Micro micro = path.micro[width / path.lane];
    const MicroRq micro_rq = rq && cols == width ? rq[width / path.lane] : nullptr;
    const int8_t* B = w.panel_data(p);
    for (int64_t r0 = 0; r0 < rows; r0 += mr) {
      const bool partial = r0 >= full;
      if (micro_rq && !partial) {
        uint8_t* y = fused->y + r0 * fused->ldy + c0;
        const uint8_t* sum = has_sum ? fused->sum + r0 * fused->ldy + c0 : nullptr;
        prefetch_rows(y, sum, fused->ldy, mr, std::min(2 * mr, rows - r0), cols);  // next tile
        micro_rq(all.from(r0), B, *fused, c0, y, sum);
        continue;
      }
      micro(partial ? last : all.from(r0), B, tile, width);
      sink(ctx, r0, std::min(mr, rows - r0), c0, cols, tile, width);
    }
  }
}

}  // namespace

void U8s8Gemm::run(const U8s8Weights& w, const uint8_t* A, int64_t lda, int64_t rows, int64_t p0,
                   int64_t p1, TileSink sink, void* ctx, const FusedOutput* fused) {
  TileRows all;
  all.A = A, all.lda = lda, all.tq = w.padded_depth() / 4;
  run_rows(w, all, rows, p0, p1, sink, ctx, fused);
}

bool U8s8Gemm::indirect_ok(const U8s8Weights& w, int64_t taps) {
  return taps > 0 && w.depth() % (4 * taps) == 0;
}

void U8s8Gemm::run_indirect(const U8s8Weights& w, const uint8_t* const* ind, int64_t taps,
                            int64_t rows, int64_t p0, int64_t p1, TileSink sink, void* ctx,
                            const FusedOutput* fused) {
  ENGINE_CHECK(indirect_ok(w, taps), "u8s8 GEMM: K=", w.depth(), " does not split into ", taps,
               " taps of whole quads");
  TileRows all;
  all.ind = ind, all.taps = taps, all.tq = w.depth() / taps / 4;
  run_rows(w, all, rows, p0, p1, sink, ctx, fused);
}

}  // namespace engine::x86
