#include "backends/x86/f32_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/simd_diagnostics.h"
#include "ops/igemm.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define ENGINE_FG_X86 1
#define ENGINE_FG_AVX512 __attribute__((target("avx2,fma,avx512f")))
#endif

namespace engine::x86 {

bool f32_kernels_available() {
#ifdef ENGINE_FG_X86
  return __builtin_cpu_supports("avx512f") && igemm_isa() == igemm_best_isa();
#else
  return false;
#endif
}

int64_t f32_gemm_ld(int64_t n) {
  return (n + 15) / 16 * 16;
}

namespace {

// Columns per panel / 16: 4, or 3 when the 16-column vectors divide by 3 and not by 4.
int64_t panel_vectors(int64_t N) {
  const int64_t nv = f32_gemm_ld(N) / 16;
  return nv % 4 == 0 ? 4 : nv % 3 == 0 ? 3 : 4;
}

}  // namespace

Tensor f32_gemm_pack(const float* w, int64_t N, int64_t K) {
  const int64_t ld = f32_gemm_ld(N), pw = 16 * panel_vectors(N);
  Tensor t(DType::F32, {K * ld});
  float* p = t.data<float>();
  for (int64_t c0 = 0; c0 < ld; c0 += pw) {  // panel: K rows of its width, one after another
    const int64_t width = std::min(pw, ld - c0);
    float* panel = p + c0 * K;
    for (int64_t n = c0; n < std::min(N, c0 + width); ++n)
      for (int64_t k = 0; k < K; ++k) panel[k * width + (n - c0)] = w[n * K + k];
  }
  return t;
}

Tensor f32_gemm_bias(const float* bias, int64_t N) {
  Tensor t(DType::F32, {f32_gemm_ld(N)});
  if (bias) std::copy(bias, bias + N, t.data<float>());
  return t;
}

namespace {

constexpr int64_t kChunk = 48;  // rows per chunk: a multiple of every tile height (6, 8, 12)

#ifdef ENGINE_FG_X86
ENGINE_SIMD_WARNINGS_OFF

// One R x (16 V) tile: rows r0.., columns c0.. (c0 a multiple of 16), whose weights start at w
// (row k at w + k * ldw: the tile's panel).
// A rows: a, a + lda, ...
template <int R, int V>
ENGINE_FG_AVX512 void tile(const F32Gemm& g, const float* a, int64_t lda, int64_t r0, int64_t c0,
                           const float* w, int64_t ldw) {
  if (g.sum) {  // the next tile's Sum lines (prefetches never fault, even past the end)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v)
        _mm_prefetch(reinterpret_cast<const char*>(g.sum + (r0 + R + r) * g.lds + c0 + 16 * v),
                     _MM_HINT_T0);
  }
  __m512 acc[R][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m512 b = _mm512_loadu_ps(g.bias + c0 + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t k = 0; k < g.K; ++k) {
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + k * ldw + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
    }
  }
  // max(lo, y) and min(hi, y) return y when y is NaN (VMAXPS returns its second operand).
  const __m512 lo = _mm512_set1_ps(g.lo), hi = _mm512_set1_ps(g.hi);
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t left = g.N - (c0 + 16 * v);
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m512 y = acc[r][v];
      if (g.sum)
        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, g.sum + (r0 + r) * g.lds + c0 + 16 * v));
      y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));
      _mm512_mask_storeu_ps(g.c + (r0 + r) * g.ldc + c0 + 16 * v, m, y);
    }
  }
}

template <int V>
constexpr int rows_for() {
  return V == 4 ? 6 : V == 3 ? 8 : 12;
}

// The last `rows` (< rows_for<V>()) rows, starting at r0 (A row r0 at a).
template <int V, int R>
ENGINE_FG_AVX512 void tail(const F32Gemm& g, const float* a, int64_t lda, int64_t r0, int64_t rows,
                           int64_t c0, const float* w) {
  if constexpr (R > 0) {
    if (rows == R)
      tile<R, V>(g, a, lda, r0, c0, w, 16 * V);
    else
      tail<V, R - 1>(g, a, lda, r0, rows, c0, w);
  }
}

// Rows [r0, r1) (A row r0 at a) x the columns c0 .. c0 + 16 V.
template <int V>
ENGINE_FG_AVX512 void column_block(const F32Gemm& g, const float* a, int64_t lda, int64_t r0,
                                   int64_t r1, int64_t c0) {
  constexpr int R = rows_for<V>();
  const float* w = g.w + c0 * g.K;  // the panel of columns c0 .. c0 + 16 V
  int64_t r = r0;
  for (; r + R <= r1; r += R) tile<R, V>(g, a + (r - r0) * lda, lda, r, c0, w, 16 * V);
  if (r < r1) tail<V, R - 1>(g, a + (r - r0) * lda, lda, r, r1 - r, c0, w);
}

// Rows [r0, r1) x column blocks [b0, b1) of bv vectors each (the last may be narrower).
ENGINE_FG_AVX512 void chunk(const F32Gemm& g, int64_t r0, int64_t r1, int64_t b0, int64_t b1,
                            int64_t bv) {
  const float* a = g.a + r0 * g.lda;
  int64_t lda = g.lda;
  if (g.map_w > 0) {  // a strided conv's rows: gathered into this thread's buffer
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>((r1 - r0) * g.K));
    const int64_t pixels = g.map_h * g.map_w;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / pixels, y = r % pixels / g.map_w, x = r % g.map_w;
      std::memcpy(buf.data() + (r - r0) * g.K, g.a + n * g.a_image + y * g.a_row + x * g.lda,
                  static_cast<size_t>(g.K) * sizeof(float));
    }
    a = buf.data(), lda = g.K;
  }
  const int64_t nv = f32_gemm_ld(g.N) / 16;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t v = b * bv, c0 = 16 * v;
    switch (std::min(bv, nv - v)) {
      case 4:
        column_block<4>(g, a, lda, r0, r1, c0);
        break;
      case 3:
        column_block<3>(g, a, lda, r0, r1, c0);
        break;
      case 2:
        column_block<2>(g, a, lda, r0, r1, c0);
        break;
      default:
        column_block<1>(g, a, lda, r0, r1, c0);
        break;
    }
  }
}

ENGINE_SIMD_WARNINGS_ON
#endif  // ENGINE_FG_X86

}  // namespace

void f32_gemm(const F32Gemm& g, int64_t rows) {
#ifdef ENGINE_FG_X86
  const int64_t bv = panel_vectors(g.N), blocks = (f32_gemm_ld(g.N) / 16 + bv - 1) / bv;
  for (int64_t r = 0; r < rows; r += kChunk) chunk(g, r, std::min(rows, r + kChunk), 0, blocks, bv);
#else
  (void)g, (void)rows;
  fail("f32_gemm: needs an x86-64 build");
#endif
}

void f32_gemm_parallel(const F32Gemm& g, int64_t rows, int threads) {
#ifdef ENGINE_FG_X86
  if (rows <= 0) return;
  const int64_t bv = panel_vectors(g.N), blocks = (f32_gemm_ld(g.N) / 16 + bv - 1) / bv;
  const int T = std::max(1, threads);
  // Chunks of about kChunk rows, a multiple of T of them, equal up to the tile height (every
  // thread gets the same rows: 49 rows on 2 threads are 24 + 25, not 48 + 1).
  const int64_t chunks = ((rows + kChunk - 1) / kChunk + T - 1) / T * T;
  const int64_t unit = bv == 3 ? 8 : 6;
  auto edge = [&](int64_t c) {
    return c == chunks ? rows : std::min(rows, (2 * c * rows / chunks + unit) / (2 * unit) * unit);
  };
  // Few chunks (small maps, batch 1): give each job a share of the column blocks too, so every
  // thread gets about four jobs.
  const int64_t groups =
      T > 1 && chunks < 4 * T ? std::min(blocks, (4 * T + chunks - 1) / chunks) : 1;
  const int64_t jobs = chunks * groups;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t c = j / groups, q = j % groups;
    chunk(g, edge(c), edge(c + 1), q * blocks / groups, (q + 1) * blocks / groups, bv);
  }
#else
  (void)g, (void)rows, (void)threads;
  fail("f32_gemm: needs an x86-64 build");
#endif
}

}  // namespace engine::x86
