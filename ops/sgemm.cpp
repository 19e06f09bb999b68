// Cache-blocked SGEMM (see sgemm.h). Structure, in the style of BLIS / GotoBLAS:
//
//   C is cut into tiles of at most MC x NC elements; the tiles are independent OpenMP tasks.
//   For one tile, the K dimension is walked in slices of KC:
//     - the KC x NC slice of op(B) is packed into NR-wide column panels  (stays in L2, each
//       panel of KC x NR floats stays in L1 while it is reused);
//     - the MC x KC slice of op(A) is packed into MR-high row panels     (stays in L2);
//     - for each B panel, for each A panel: the micro-kernel computes an MR x NR block of C with
//       all MR x NR accumulators in registers, reading both panels sequentially.
//   Packing zero-pads ragged edges, so the micro-kernel always works on a full MR x NR block;
//   edge blocks of C are written through a small temporary.
// Skinny products (N or M <= 8, e.g. convolutions with 1x1 or 2x2 outputs at batch 1) skip the
// packing of the big matrix: its rows are dotted with the few vectors of the other operand.
// The register kernels exist in two builds of the same source: generic (SSE2, 4 floats per vector)
// and AVX2+FMA (8 floats), the latter selected at run time when the CPU supports it.
#include "ops/sgemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace engine {
namespace {

constexpr int kMR = 6;        // rows of the register tile (both kernels)
constexpr int64_t kKC = 256;  // depth of packed panels
constexpr int64_t kMC = 96;   // rows of a C tile (multiple of kMR)
constexpr int64_t kNC = 512;  // columns of a C tile (multiple of every NR)
constexpr int kMaxNR = 16;

// c[MR x NR] = alpha * (pa panel) x (pb panel) + beta * c; beta == 0 means c is not read.
// pa: kc groups of MR floats (one column of the A panel each); pb: kc groups of NR floats.
using MicroKernel = void (*)(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc,
                             float alpha, float beta);

// V is a GCC vector of W floats; the tile is kMR x (2 W). Written so that the compiler keeps the
// 2 * kMR accumulators in registers (12 of the 16 SSE/AVX registers) and emits one broadcast and
// two multiply-adds per row and k.
template <class V>
inline __attribute__((always_inline)) void micro_kernel_impl(int64_t kc, const float* pa,
                                                             const float* pb, float* c, int64_t ldc,
                                                             float alpha, float beta) {
  constexpr int W = int(sizeof(V) / sizeof(float));
  V acc[kMR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    V b0, b1;
    std::memcpy(&b0, pb, sizeof(V));
    std::memcpy(&b1, pb + W, sizeof(V));
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const V a = pa[i] - V{};  // broadcast (x - 0 == x exactly, so this folds away)
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
    pa += kMR;
    pb += 2 * W;
  }
  for (int i = 0; i < kMR; ++i) {
    float* ci = c + i * ldc;
    for (int h = 0; h < 2; ++h) {
      V r = alpha * acc[i][h];
      if (beta != 0.0f) {
        V old;
        std::memcpy(&old, ci + h * W, sizeof(V));
        r += beta == 1.0f ? old : beta * old;
      }
      std::memcpy(ci + h * W, &r, sizeof(V));
    }
  }
}

// res[j] = dot(a[0..K), vecs[j * K .. j * K + K)) for j < NJ: the row of a is loaded once for
// all NJ vectors; two accumulators per vector hide the add latency.
template <class V, int NJ>
inline __attribute__((always_inline)) void dots_impl(const float* a, const float* vecs, int64_t K,
                                                     float* res) {
  constexpr int W = int(sizeof(V) / sizeof(float));
  V acc[NJ][2] = {};
  int64_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    V a0, a1;
    std::memcpy(&a0, a + k, sizeof(V));
    std::memcpy(&a1, a + k + W, sizeof(V));
#pragma GCC unroll 4
    for (int j = 0; j < NJ; ++j) {
      V v0, v1;
      std::memcpy(&v0, vecs + j * K + k, sizeof(V));
      std::memcpy(&v1, vecs + j * K + k + W, sizeof(V));
      acc[j][0] += a0 * v0;
      acc[j][1] += a1 * v1;
    }
  }
  for (int j = 0; j < NJ; ++j) {
    const V t = acc[j][0] + acc[j][1];
    float sum = 0.0f;
    for (int l = 0; l < W; ++l) sum += t[l];
    for (int64_t kk = k; kk < K; ++kk) sum += a[kk] * vecs[j * K + kk];
    res[j] = sum;
  }
}

// res[j] = dot(a, vecs row j) for j < nvec (nvec <= 4).
using DotsFn = void (*)(const float* a, const float* vecs, int64_t K, int nvec, float* res);

template <class V>
inline __attribute__((always_inline)) void dots_dispatch(const float* a, const float* vecs,
                                                         int64_t K, int nvec, float* res) {
  switch (nvec) {
    case 1:
      return dots_impl<V, 1>(a, vecs, K, res);
    case 2:
      return dots_impl<V, 2>(a, vecs, K, res);
    case 3:
      return dots_impl<V, 3>(a, vecs, K, res);
    default:
      return dots_impl<V, 4>(a, vecs, K, res);
  }
}

typedef float V4 __attribute__((vector_size(16)));
void micro_kernel_generic(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc,
                          float alpha, float beta) {
  micro_kernel_impl<V4>(kc, pa, pb, c, ldc, alpha, beta);
}
void dots_generic(const float* a, const float* vecs, int64_t K, int nvec, float* res) {
  dots_dispatch<V4>(a, vecs, K, nvec, res);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define ENGINE_SGEMM_AVX2 1
typedef float V8 __attribute__((vector_size(32)));
__attribute__((target("avx2,fma"))) void micro_kernel_avx2(int64_t kc, const float* pa,
                                                           const float* pb, float* c, int64_t ldc,
                                                           float alpha, float beta) {
  micro_kernel_impl<V8>(kc, pa, pb, c, ldc, alpha, beta);
}
__attribute__((target("avx2,fma"))) void dots_avx2(const float* a, const float* vecs, int64_t K,
                                                   int nvec, float* res) {
  dots_dispatch<V8>(a, vecs, K, nvec, res);
}
#endif

struct Kernel {
  int nr;
  MicroKernel fn;
  DotsFn dots;
  const char* name;
};

std::atomic<bool> g_force_generic{false};

const Kernel& select_kernel() {
  static const Kernel generic{8, micro_kernel_generic, dots_generic, "generic 6x8"};
  static const Kernel best = [] {
#ifdef ENGINE_SGEMM_AVX2
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return Kernel{16, micro_kernel_avx2, dots_avx2, "avx2+fma 6x16"};
#endif
    return generic;
  }();
  return g_force_generic.load(std::memory_order_relaxed) ? generic : best;
}

// Packs rows [i0, i0+m) x columns [p0, p0+kc) of op(A) into panels of kMR rows:
// dst[(ir / kMR) * kMR * kc + k * kMR + r] = op(A)(i0 + ir + r, p0 + k), zero past row m.
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc,
            float* dst) {
  for (int64_t ir = 0; ir < m; ir += kMR) {
    const int rows = int(std::min<int64_t>(kMR, m - ir));
    float* d = dst + ir * kc;
    if (!trans) {  // op(A)(i, k) = A[i * lda + k]: read rows contiguously
      for (int r = 0; r < rows; ++r) {
        const float* s = A + (i0 + ir + r) * lda + p0;
        for (int64_t k = 0; k < kc; ++k) d[k * kMR + r] = s[k];
      }
      for (int r = rows; r < kMR; ++r)
        for (int64_t k = 0; k < kc; ++k) d[k * kMR + r] = 0.0f;
    } else {  // op(A)(i, k) = A[k * lda + i]: each k gives `rows` contiguous values
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = A + (p0 + k) * lda + i0 + ir;
        int r = 0;
        for (; r < rows; ++r) d[k * kMR + r] = s[r];
        for (; r < kMR; ++r) d[k * kMR + r] = 0.0f;
      }
    }
  }
}

// Packs rows [p0, p0+kc) x columns [j0, j0+n) of op(B) into panels of nr columns:
// dst[(jr / nr) * nr * kc + k * nr + c] = op(B)(p0 + k, j0 + jr + c), zero past column n.
void pack_b(bool trans, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n,
            int nr, float* dst) {
  for (int64_t jr = 0; jr < n; jr += nr) {
    const int cols = int(std::min<int64_t>(nr, n - jr));
    float* d = dst + jr * kc;
    if (!trans) {  // op(B)(k, j) = B[k * ldb + j]
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = B + (p0 + k) * ldb + j0 + jr;
        float* dk = d + k * nr;
        if (cols == nr) {
          std::memcpy(dk, s, sizeof(float) * size_t(nr));
        } else {
          int c = 0;
          for (; c < cols; ++c) dk[c] = s[c];
          for (; c < nr; ++c) dk[c] = 0.0f;
        }
      }
    } else {  // op(B)(k, j) = B[j * ldb + k]
      for (int c = 0; c < cols; ++c) {
        const float* s = B + (j0 + jr + c) * ldb + p0;
        for (int64_t k = 0; k < kc; ++k) d[k * nr + c] = s[k];
      }
      for (int c = cols; c < nr; ++c)
        for (int64_t k = 0; k < kc; ++k) d[k * nr + c] = 0.0f;
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

// Per-thread packing buffers, kept across calls (OpenMP reuses its threads).
std::vector<float>& thread_buffer(int which) {
  thread_local std::vector<float> bufs[2];
  return bufs[which];
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Matrix-vector style products for skinny shapes (N <= 4, or M == 1): no packing of the big
// matrix, which is streamed once.
// C[i, j] = alpha * dot(mat row i, vecs row j) + beta * C[i, j], for i < rows, j < nvec, with
// C[i, j] at out[i * ldo + j * ldj] and vecs a contiguous nvec x K matrix.
void gemm_dots(int64_t rows, int64_t nvec, int64_t K, float alpha, const float* mat, int64_t ldm,
               const float* vecs, float beta, float* out, int64_t ldo, int64_t ldj, int nt) {
  const DotsFn dots = select_kernel().dots;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j0 = 0; j0 < nvec; j0 += 4) {
      const int nj = int(std::min<int64_t>(4, nvec - j0));
      float res[4];
      dots(mat + i * ldm, vecs + j0 * K, K, nj, res);
      for (int j = 0; j < nj; ++j) {
        float& o = out[i * ldo + (j0 + j) * ldj];
        o = alpha * res[j] + (beta == 0.0f ? 0.0f : beta * o);
      }
    }
  }
}

// out[j * ldo] = alpha * sum_k vec[k * ldv] * mat[k * ldm + j] + beta * out[j * ldo], j in [0, n).
void gemv_axpy(int64_t n, int64_t K, float alpha, const float* mat, int64_t ldm, const float* vec,
               int64_t ldv, float beta, float* out, int64_t ldo, int nt) {
  constexpr int64_t kBlock = 512;  // output columns per task (accumulators stay in L1)
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && nblocks > 1)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kBlock, len = std::min(kBlock, n - j0);
    alignas(64) float acc[kBlock] = {};
    const int64_t len4 = len & ~int64_t(3);
    for (int64_t k = 0; k < K; ++k) {
      const float v = vec[k * ldv];
      const V4 vv = v - V4{};
      const float* row = mat + k * ldm + j0;
      int64_t j = 0;
      for (; j < len4; j += 4) {  // acc[j..j+4) += v * row[j..j+4)
        V4 r, a;
        std::memcpy(&r, row + j, sizeof(V4));
        std::memcpy(&a, acc + j, sizeof(V4));
        a += vv * r;
        std::memcpy(acc + j, &a, sizeof(V4));
      }
      for (; j < len; ++j) acc[j] += v * row[j];
    }
    for (int64_t j = 0; j < len; ++j) {
      float& o = out[(j0 + j) * ldo];
      o = alpha * acc[j] + (beta == 0.0f ? 0.0f : beta * o);
    }
  }
}

}  // namespace

const char* sgemm_kernel_name() {
  return select_kernel().name;
}
void sgemm_force_generic_kernel(bool on) {
  g_force_generic.store(on);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           int num_threads) {
  ENGINE_CHECK(M >= 0 && N >= 0 && K >= 0, "sgemm: negative size M=", M, " N=", N, " K=", K);
  if (M == 0 || N == 0) return;
  ENGINE_CHECK(ldc >= N, "sgemm: ldc=", ldc, " < N=", N);
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  ENGINE_CHECK(lda >= (trans_a ? M : K), "sgemm: lda=", lda, " too small");
  ENGINE_CHECK(ldb >= (trans_b ? K : N), "sgemm: ldb=", ldb, " too small");

  int nt = num_threads;
#ifdef _OPENMP
  if (nt <= 0) nt = omp_get_max_threads();
  if (omp_in_parallel()) nt = 1;
#endif
  if (nt < 1 || double(M) * double(N) * double(K) < 128.0 * 128.0 * 16.0) nt = 1;

  // Skinny products: rows of the big matrix against a few vectors, copied contiguous.
  constexpr int64_t kSkinny = 8, kMinDotK = 32;
  auto gather = [K](int64_t n, const float* X, int64_t ldx, bool rows) {
    std::vector<float> v(size_t(n * K));  // v[j * K + k] = X row j (rows) or column j
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < K; ++k) v[size_t(j * K + k)] = rows ? X[j * ldx + k] : X[k * ldx + j];
    return v;
  };
  if (!trans_a &&
      (N == 1 || (N <= kSkinny && K >= kMinDotK))) {  // C[i, j] = dot(A row i, op(B) column j)
    const std::vector<float> bt = gather(N, B, ldb, trans_b);
    gemm_dots(M, N, K, alpha, A, lda, bt.data(), beta, C, ldc, 1, nt);
    return;
  }
  if (trans_b &&
      (M == 1 || (M <= kSkinny && K >= kMinDotK))) {  // C[i, j] = dot(B row j, op(A) row i)
    const std::vector<float> at = gather(M, A, lda, !trans_a);
    gemm_dots(N, M, K, alpha, B, ldb, at.data(), beta, C, 1, ldc, nt);
    return;
  }
  if (N == 1) {  // (trans_a) C column = sum over k of op(B)(k, 0) * row k of A
    const std::vector<float> x = gather(1, B, ldb, trans_b);
    gemv_axpy(M, K, alpha, A, lda, x.data(), 1, beta, C, ldc, nt);
    return;
  }
  if (M == 1) {  // (!trans_b) C row = sum over k of op(A)(0, k) * row k of B
    const std::vector<float> x = gather(1, A, lda, !trans_a);
    gemv_axpy(N, K, alpha, B, ldb, x.data(), 1, beta, C, 1, nt);
    return;
  }

  const Kernel& kern = select_kernel();
  const int nr = kern.nr;

  // Tiles of C: at most kMC x kNC, balanced, and split further until every thread has work.
  int64_t nm = ceil_div(M, kMC), nn = ceil_div(N, kNC);
  if (nt > 1) {
    auto tasks = [&] { return nm * nn; };
    while (tasks() < 2 * nt || (tasks() < 8 * nt && tasks() % nt != 0)) {
      const int64_t mb = ceil_div(M, nm), nb = ceil_div(N, nn);
      if (nb >= 2 * nr && nb >= mb)
        ++nn;
      else if (mb >= 2 * kMR)
        ++nm;
      else if (nb >= 2 * nr)
        ++nn;
      else
        break;
    }
  }
  const int64_t mcb = std::min(round_up(ceil_div(M, nm), kMR), round_up(M, kMR));
  const int64_t ncb = std::min(round_up(ceil_div(N, nn), nr), round_up(N, nr));
  nm = ceil_div(M, mcb);
  nn = ceil_div(N, ncb);
  const int64_t kcb = std::min(kKC, K);
  const int64_t ntasks = nm * nn;
  if (ntasks < nt) nt = int(ntasks);

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < ntasks; ++t) {
    const int64_t i0 = (t / nn) * mcb, m = std::min(mcb, M - i0);
    const int64_t j0 = (t % nn) * ncb, n = std::min(ncb, N - j0);
    std::vector<float>& abuf = thread_buffer(0);
    std::vector<float>& bbuf = thread_buffer(1);
    if (abuf.size() < size_t(mcb * kcb)) abuf.resize(size_t(mcb * kcb));
    if (bbuf.size() < size_t(ncb * kcb)) bbuf.resize(size_t(ncb * kcb));
    float* pa = abuf.data();
    float* pb = bbuf.data();
    alignas(64) float tmp[kMR * kMaxNR];

    for (int64_t p0 = 0; p0 < K; p0 += kcb) {
      const int64_t kc = std::min(kcb, K - p0);
      const float b = p0 == 0 ? beta : 1.0f;
      pack_b(trans_b, B, ldb, p0, kc, j0, n, nr, pb);
      pack_a(trans_a, A, lda, i0, m, p0, kc, pa);
      for (int64_t jr = 0; jr < n; jr += nr) {
        const int cols = int(std::min<int64_t>(nr, n - jr));
        for (int64_t ir = 0; ir < m; ir += kMR) {
          const int rows = int(std::min<int64_t>(kMR, m - ir));
          float* c = C + (i0 + ir) * ldc + j0 + jr;
          if (rows == kMR && cols == nr) {
            kern.fn(kc, pa + ir * kc, pb + jr * kc, c, ldc, alpha, b);
          } else {
            kern.fn(kc, pa + ir * kc, pb + jr * kc, tmp, nr, alpha, 0.0f);
            for (int i = 0; i < rows; ++i)
              for (int j = 0; j < cols; ++j) {
                float& dst = c[i * ldc + j];
                dst = tmp[i * nr + j] + (b == 0.0f ? 0.0f : b * dst);
              }
          }
        }
      }
    }
  }
}

void sgemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += double(a) * double(b);
      }
      float& c = C[i * ldc + j];
      c = float(alpha * s + (beta == 0.0f ? 0.0 : double(beta) * c));
    }
}

}  // namespace engine
