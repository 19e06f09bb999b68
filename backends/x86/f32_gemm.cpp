#include "backends/x86/f32_gemm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
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

// What a tile reads and where its sums go. a: R row pointers; the tile reads a[r][koff ..
// koff + kn). w: the weights of those kn values of k, rows of 16 V floats (the tile's panel).
// part: nullptr when kn is the whole K; else R rows of 16 V partial sums, which the tile starts
// from (unless first: the bias) and leaves there (unless last: the epilogue writes C).
struct TileIn {
  const float* const* a;
  int64_t koff, kn;
  const float* w;
  float* part;
  bool first, last;
  const float* pf = nullptr;  // lines to prefetch into L2 while the tile runs: pf, pf + 16, ...
  int64_t pf_lines = 0;       // how many (at most kn)
};

// One R x (16 V) tile: rows r0.., columns c0.. (c0 a multiple of 16).
template <int R, int V>
ENGINE_FG_AVX512 void tile(const F32Gemm& g, const TileIn& t, int64_t r0, int64_t c0) {
  if (g.sum && t.last) {  // the next tile's Sum lines (prefetches never fault, even past the end)
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
    for (int r = 0; r < R; ++r)
      acc[r][v] = t.first ? b : _mm512_loadu_ps(t.part + (r * V + v) * 16);
  }
  const float* a[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) a[r] = t.a[r] + t.koff;
  const float* w = t.w;
  for (int64_t k = 0; k < t.kn; ++k, w += 16 * V) {
    if (k < t.pf_lines) _mm_prefetch(reinterpret_cast<const char*>(t.pf + 16 * k), _MM_HINT_T1);
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r][k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
    }
  }
  if (!t.last) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(t.part + (r * V + v) * 16, acc[r][v]);
    return;
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

// The last `rows` (< rows_for<V>()) rows, starting at r0.
template <int V, int R>
ENGINE_FG_AVX512 void tail(const F32Gemm& g, const TileIn& t, int64_t r0, int64_t rows,
                           int64_t c0) {
  if constexpr (R > 0) {
    if (rows == R)
      tile<R, V>(g, t, r0, c0);
    else
      tail<V, R - 1>(g, t, r0, rows, c0);
  }
}

// Rows [r0, r1) x the columns c0 .. c0 + 16 V, over k = k0 .. k0 + t.kn (t: the tiles' common
// part, with t.a the pointers of rows r0.. and t.part the partial sums of rows r0.., rows of 16 V
// floats).
template <int V>
ENGINE_FG_AVX512 void column_block(const F32Gemm& g, TileIn t, int64_t k0, int64_t r0, int64_t r1,
                                   int64_t c0) {
  constexpr int R = rows_for<V>();
  t.w = g.w + c0 * g.K + k0 * 16 * V;  // the panel of columns c0 .. c0 + 16 V, from row k0
  if (r1 <= r0) return;
  const float* const* a = t.a;
  float* const part = t.part;
  // t.pf_lines lines from t.pf: an equal share (at most kn) for each tile.
  const float* pf = t.pf;
  const int64_t tiles = (r1 - r0 + R - 1) / R,
                share = std::min(t.kn, (t.pf_lines + tiles - 1) / tiles);
  int64_t pf_left = t.pf_lines;
  auto at = [&](int64_t r) {  // t for the tile at row r
    t.a = a + (r - r0), t.part = part ? part + (r - r0) * 16 * V : nullptr;
    t.pf = pf, t.pf_lines = std::min(share, pf_left);
    pf += 16 * t.pf_lines, pf_left -= t.pf_lines;
    return t;
  };
  int64_t r = r0;
  for (; r + R <= r1; r += R) tile<R, V>(g, at(r), r, c0);
  if (r < r1) tail<V, R - 1>(g, at(r), r, r1 - r, c0);
}

// Calls f(V, c0) for column blocks [b0, b1) of bv vectors each (the last may be narrower), with
// V a compile-time constant (std::integral_constant).
template <typename F>
ENGINE_FG_AVX512 void for_column_blocks(const F32Gemm& g, int64_t b0, int64_t b1, int64_t bv,
                                        F&& f) {
  const int64_t nv = f32_gemm_ld(g.N) / 16;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t v = b * bv, c0 = 16 * v;
    switch (std::min(bv, nv - v)) {
      case 4:
        f(std::integral_constant<int, 4>(), c0);
        break;
      case 3:
        f(std::integral_constant<int, 3>(), c0);
        break;
      case 2:
        f(std::integral_constant<int, 2>(), c0);
        break;
      default:
        f(std::integral_constant<int, 1>(), c0);
        break;
    }
  }
}

// Rows [r0, r1) x column blocks [b0, b1) of bv vectors each (the last may be narrower).
ENGINE_FG_AVX512 void chunk(const F32Gemm& g, int64_t r0, int64_t r1, int64_t b0, int64_t b1,
                            int64_t bv) {
  thread_local std::vector<const float*> rows;
  rows.resize(static_cast<size_t>(r1 - r0));
  if (g.map_w > 0) {  // a strided conv's rows: gathered into this thread's buffer
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>((r1 - r0) * g.K));
    const int64_t pixels = g.map_h * g.map_w;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / pixels, y = r % pixels / g.map_w, x = r % g.map_w;
      std::memcpy(buf.data() + (r - r0) * g.K, g.a + n * g.a_image + y * g.a_row + x * g.lda,
                  static_cast<size_t>(g.K) * sizeof(float));
      rows[size_t(r - r0)] = buf.data() + (r - r0) * g.K;
    }
  } else {
    for (int64_t r = r0; r < r1; ++r) rows[size_t(r - r0)] = g.a + r * g.lda;
  }
  const TileIn t{rows.data(), 0, g.K, nullptr, nullptr, true, true};
  for_column_blocks(g, b0, b1, bv, [&](auto V, int64_t c0) {
    column_block<decltype(V)::value>(g, t, 0, r0, r1, c0);
  });
}

// k per block: at most this many channels of one tap (a 64-column panel's block is 128 KB, in L2;
// 256 was 5-7 % slower on resnet18's 7x7 layers at batch 1).
constexpr int64_t kConvKBlock = 512;
constexpr int64_t kConvRows = 288;  // rows per chunk at most (a multiple of 6, 8 and 12)

// Output pixels [r0, r1) of a convolution x column blocks [b0, b1) of bv vectors: each block of k
// (a tap's channels, at most kConvKBlock) for all rows before the next block.
ENGINE_FG_AVX512 void conv_chunk(const F32Conv& cv, int64_t r0, int64_t r1, int64_t b0, int64_t b1,
                                 int64_t bv) {
  const F32Gemm& g = cv.g;
  const int64_t taps = cv.kh * cv.kw, rows = r1 - r0, pixels = cv.oh * cv.ow;
  thread_local std::vector<const float*> ptr;  // [tap][row]: the input pixel, or zeros
  thread_local std::vector<float> zeros, part;
  ptr.resize(static_cast<size_t>(taps * rows));
  if (zeros.size() < static_cast<size_t>(cv.c)) zeros.assign(static_cast<size_t>(cv.c), 0.0f);
  part.resize(static_cast<size_t>(rows * 64));
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / pixels, oy = r % pixels / cv.ow, ox = r % cv.ow;
    for (int64_t i = 0; i < cv.kh; ++i)
      for (int64_t j = 0; j < cv.kw; ++j) {
        const int64_t iy = oy * cv.sh - cv.pt + i, ix = ox * cv.sw - cv.pl + j;
        const bool in = iy >= 0 && iy < cv.h && ix >= 0 && ix < cv.w;
        ptr[static_cast<size_t>((i * cv.kw + j) * rows + r - r0)] =
            in ? cv.x + ((n * cv.h + iy) * cv.w + ix) * cv.c : zeros.data();
      }
  }
  for_column_blocks(g, b0, b1, bv, [&](auto V, int64_t c0) {
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t cb = 0; cb < cv.c; cb += kConvKBlock) {
        const int64_t kn = std::min(kConvKBlock, cv.c - cb);
        TileIn t{
            ptr.data() + tap * rows,           cb, kn, nullptr, part.data(), tap == 0 && cb == 0,
            tap == taps - 1 && cb + kn == cv.c};
        // Prefetch the next block's weights (the panel's rows k0 + kn ..) while this one runs.
        // The next block's weights (the panel's rows k0 + kn ..) go to L2 while this one runs,
        // a share per tile: without, each block's first tile waits on memory (7-10 % slower).
        constexpr int64_t v = decltype(V)::value;
        const int64_t k0 = tap * cv.c + cb, next = std::min(kConvKBlock, g.K - k0 - kn);
        if (next > 0) t.pf = g.w + c0 * g.K + (k0 + kn) * 16 * v, t.pf_lines = next * v;
        column_block<decltype(V)::value>(g, t, k0, r0, r1, c0);
      }
  });
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

Tensor f32_conv_pack(const float* w, int64_t M, int64_t C, int64_t kh, int64_t kw) {
  const int64_t taps = kh * kw, K = taps * C;
  std::vector<float> t(static_cast<size_t>(M * K));  // [M][tap][C]
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t tap = 0; tap < taps; ++tap)
        t[static_cast<size_t>(m * K + tap * C + c)] = w[(m * C + c) * taps + tap];
  return f32_gemm_pack(t.data(), M, K);
}

void f32_conv_parallel(const F32Conv& cv, int threads) {
#ifdef ENGINE_FG_X86
  const int64_t rows = cv.n * cv.oh * cv.ow;
  if (rows <= 0) return;
  const F32Gemm& g = cv.g;
  ENGINE_CHECK(g.K == cv.kh * cv.kw * cv.c, "f32_conv: K must be kh kw C");
  const int64_t bv = panel_vectors(g.N), blocks = (f32_gemm_ld(g.N) / 16 + bv - 1) / bv;
  const int T = std::max(1, threads);
  // Chunks of at most kConvRows rows, and at least one job per thread; all column blocks of a
  // chunk are consecutive jobs, so a thread's blocks share its rows.
  int64_t chunks = std::max((rows + kConvRows - 1) / kConvRows, (T + blocks - 1) / blocks);
  const int64_t step = ((rows + chunks - 1) / chunks + 23) / 24 * 24;
  chunks = (rows + step - 1) / step;
  const int64_t jobs = chunks * blocks;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && jobs > 1)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t c = j / blocks, b = j % blocks;
    conv_chunk(cv, c * step, std::min(rows, (c + 1) * step), b, b + 1, bv);
  }
#else
  (void)cv, (void)threads;
  fail("f32_conv: needs an x86-64 build");
#endif
}

}  // namespace engine::x86
