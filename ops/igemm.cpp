// Integer GEMM (see igemm.h). Structure, as in ops/sgemm.cpp:
//
//   C is cut into tiles of all rows x at most kNC columns (rows are split too only when there are
//   fewer tiles than threads); the tiles are independent OpenMP tasks.
//   For one tile, K is walked in slices of at most kKP pairs:
//     - the slice of B is packed into NR-wide column panels of int16 pairs (a panel of
//       kKP x NR words stays in L1 while the row panels of a kMC-row block of A run over it);
//     - A was packed once, whole, in MR-high row panels (a slice of a panel is contiguous);
//     - the micro-kernel computes an MR x NR block of C with all accumulators in registers and
//       adds it to C (the first slice stores it). Edge blocks of C go through a small buffer.
// Paths exist as functions compiled for their ISA (target attributes) and are picked at run time.
#include "ops/igemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define ENGINE_IGEMM_X86 1
#define ENGINE_TARGET_AVX2 __attribute__((target("avx2")))
#define ENGINE_TARGET_VNNI __attribute__((target("avx2,avx512f,avx512bw,avx512vnni")))
#endif

namespace engine {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

// ---------------------------------------------------------------- reference path

constexpr int64_t kRefColBlock = 256;  // 4 rows x 256 int32 accumulators stay in L1

// Rows [0, R) of C for one block of nb <= kRefColBlock columns. Each B row is loaded once for R
// output rows; the j loop vectorizes (int16 x int16 -> int32 widening multiplies). Sums wrap
// modulo 2^32 (unsigned arithmetic) as the hardware paths do.
template <int R>
void ref_rows(int64_t nb, int64_t K, const int16_t* A, int64_t lda, const int16_t* B, int64_t ldb,
              int32_t* C, int64_t ldc) {
  alignas(64) uint32_t acc[R][kRefColBlock];
  for (int r = 0; r < R; ++r) std::fill(acc[r], acc[r] + nb, 0u);
  for (int64_t k = 0; k < K; ++k) {
    const int16_t* b = B + k * ldb;
    int32_t a[R];
    for (int r = 0; r < R; ++r) a[r] = A[r * lda + k];
    for (int64_t j = 0; j < nb; ++j) {
      const int32_t bj = b[j];
      for (int r = 0; r < R; ++r) acc[r][j] += uint32_t(a[r] * bj);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < nb; ++j) C[r * ldc + j] = int32_t(acc[r][j]);
}

void reference_gemm(int64_t M, int64_t N, int64_t K, const int16_t* A, int64_t lda,
                    const int16_t* B, int64_t ldb, int32_t* C, int64_t ldc, int threads) {
  const int64_t mblocks = (M + 3) / 4, nblocks = (N + kRefColBlock - 1) / kRefColBlock;
  const int64_t tasks = mblocks * nblocks;
  const bool par = threads > 1 && tasks > 1 && double(M) * double(N) * double(K) > 1e5;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (par)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t i0 = (t / nblocks) * 4, j0 = (t % nblocks) * kRefColBlock;
    const int64_t nb = std::min(kRefColBlock, N - j0);
    const int16_t* a = A + i0 * lda;
    int32_t* c = C + i0 * ldc + j0;
    switch (std::min<int64_t>(4, M - i0)) {
      case 4:
        ref_rows<4>(nb, K, a, lda, B + j0, ldb, c, ldc);
        break;
      case 3:
        ref_rows<3>(nb, K, a, lda, B + j0, ldb, c, ldc);
        break;
      case 2:
        ref_rows<2>(nb, K, a, lda, B + j0, ldb, c, ldc);
        break;
      default:
        ref_rows<1>(nb, K, a, lda, B + j0, ldb, c, ldc);
        break;
    }
  }
}

// ---------------------------------------------------------------- SIMD paths

// Two int16 as one 32-bit word: lo in the low half (the even k), hi in the high half.
inline uint32_t pair(int16_t lo, int16_t hi) {
  return uint32_t(uint16_t(lo)) | (uint32_t(uint16_t(hi)) << 16);
}

// c[MR x NR] (= or +=) pa panel x pb panel over kp pairs. pa: kp groups of MR words; pb: kp
// groups of NR words. `add`: accumulate into c instead of overwriting it.
using MicroKernel = void (*)(int64_t kp, const uint32_t* pa, const uint32_t* pb, int32_t* c,
                             int64_t ldc, bool add);
// Packs pairs [p0, p0 + kp) x columns [j0, j0 + n) of B into NR-wide panels (zero-padded).
using PackB = void (*)(const int16_t* B, int64_t ldb, int64_t K, int64_t p0, int64_t kp, int64_t j0,
                       int64_t n, int nr, uint32_t* dst);

constexpr int kMaxTile = 8 * 32;  // mr x nr of the largest micro-kernel

struct Kernel {
  int mr = 1, nr = 1;
  MicroKernel micro = nullptr;
  PackB pack_b = nullptr;
};

#ifdef ENGINE_IGEMM_X86

// dst[0..16) = pairs of b0[c], b1[c] for 16 columns. unpacklo / unpackhi interleave within
// 128-bit lanes (columns 0-3 | 8-11 and 4-7 | 12-15); the permutes restore the column order.
ENGINE_TARGET_AVX2 inline void interleave16(const int16_t* b0, const int16_t* b1, uint32_t* dst) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0));
  const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1));
  const __m256i lo = _mm256_unpacklo_epi16(x, y), hi = _mm256_unpackhi_epi16(x, y);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
}

// nr: a multiple of 16.
ENGINE_TARGET_AVX2 void pack_b_avx2(const int16_t* B, int64_t ldb, int64_t K, int64_t p0,
                                    int64_t kp, int64_t j0, int64_t n, int nr, uint32_t* dst) {
  for (int64_t jr = 0; jr < n; jr += nr) {
    const int cols = int(std::min<int64_t>(nr, n - jr));
    uint32_t* d = dst + jr * kp;
    for (int64_t p = 0; p < kp; ++p, d += nr) {
      const int64_t k = 2 * (p0 + p);
      const int16_t* b0 = B + k * ldb + j0 + jr;
      if (cols == nr && k + 1 < K) {
        for (int c = 0; c < nr; c += 16) interleave16(b0 + c, b0 + ldb + c, d + c);
        continue;
      }
      int c = 0;
      if (k + 1 < K)
        for (; c < cols; ++c) d[c] = pair(b0[c], b0[ldb + c]);
      else
        for (; c < cols; ++c) d[c] = pair(b0[c], 0);
      for (; c < nr; ++c) d[c] = 0;
    }
  }
}

// acc + madd(a, b). Inline assembly: with intrinsics GCC 12 hoists the broadcasts of all rows and
// spills accumulators to the stack (measured 1.5x slower).
ENGINE_TARGET_AVX2 inline __m256i madd_add(__m256i acc, __m256i a, __m256i b) {
  __m256i t;
  asm("vpmaddwd %3, %2, %1\n\tvpaddd %1, %0, %0" : "+x"(acc), "=&x"(t) : "x"(a), "x"(b));
  return acc;
}

// MR x (8 NV) tile.
template <int MR, int NV>
ENGINE_TARGET_AVX2 void micro_avx2(int64_t kp, const uint32_t* pa, const uint32_t* pb, int32_t* c,
                                   int64_t ldc, bool add) {
  __m256i s[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) s[r][v] = _mm256_setzero_si256();
  for (int64_t p = 0; p < kp; ++p) {
    __m256i b[NV];
    for (int v = 0; v < NV; ++v)
      b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 8 * v));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i a = _mm256_set1_epi32(int32_t(pa[r]));
      for (int v = 0; v < NV; ++v) s[r][v] = madd_add(s[r][v], a, b[v]);
    }
    pa += MR;
    pb += 8 * NV;
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      __m256i* cp = reinterpret_cast<__m256i*>(c + r * ldc + 8 * v);
      _mm256_storeu_si256(cp, add ? _mm256_add_epi32(s[r][v], _mm256_loadu_si256(cp)) : s[r][v]);
    }
}

// acc + dpwssd(a, b). Inline assembly: GCC 12 compiles _mm512_dpwssd_epi32 (whose accumulator is
// also its destination) with a register copy per call and spills the tile to the stack.
ENGINE_TARGET_VNNI inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// MR x (16 NV) tile; the A word is broadcast to every lane.
template <int MR, int NV>
ENGINE_TARGET_VNNI void micro_vnni(int64_t kp, const uint32_t* pa, const uint32_t* pb, int32_t* c,
                                   int64_t ldc, bool add) {
  __m512i s[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) s[r][v] = _mm512_setzero_si512();
  for (int64_t p = 0; p < kp; ++p) {
    __m512i b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(pb + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = _mm512_set1_epi32(int32_t(pa[r]));
      for (int v = 0; v < NV; ++v) s[r][v] = dpwssd(s[r][v], a, b[v]);
    }
    pa += MR;
    pb += 16 * NV;
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      int32_t* cp = c + r * ldc + 16 * v;
      _mm512_storeu_si512(cp, add ? _mm512_add_epi32(s[r][v], _mm512_loadu_si512(cp)) : s[r][v]);
    }
}

#endif  // ENGINE_IGEMM_X86

Kernel kernel_for(IgemmIsa isa) {
#ifdef ENGINE_IGEMM_X86
  if (isa == IgemmIsa::Avx512Vnni) return Kernel{8, 32, micro_vnni<8, 2>, pack_b_avx2};
  if (isa == IgemmIsa::Avx2 || isa == IgemmIsa::AvxVnni)
    return Kernel{2, 32, micro_avx2<2, 4>, pack_b_avx2};
#endif
  (void)isa;
  return Kernel{};
}

// ---------------------------------------------------------------- path selection

bool avx_vnni_supported() {
#ifdef ENGINE_IGEMM_X86
  // CPUID.(EAX=7, ECX=1):EAX bit 4 (clang 14 has no "avxvnni" for __builtin_cpu_supports).
  __builtin_cpu_init();
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return __builtin_cpu_supports("avx2") && (a & (1u << 4)) != 0;
#else
  return false;
#endif
}

IgemmIsa detect_best() {
#ifdef ENGINE_IGEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return IgemmIsa::Avx512Vnni;
  if (avx_vnni_supported()) return IgemmIsa::AvxVnni;
  if (__builtin_cpu_supports("avx2")) return IgemmIsa::Avx2;
#endif
  return IgemmIsa::Reference;
}

// The best path at most `want` this CPU runs (avx512_vnni does not imply avx_vnni).
IgemmIsa clamp_isa(IgemmIsa want) {
  want = std::min(want, igemm_best_isa());
  if (want == IgemmIsa::AvxVnni && !avx_vnni_supported()) want = IgemmIsa::Avx2;
  return want;
}

// ENGINE_ISA, read once (a bad value throws at every call, so the first GEMM reports it).
IgemmIsa env_isa() {
  static const IgemmIsa isa = [] {
    const char* e = std::getenv("ENGINE_ISA");
    if (!e || !*e) return igemm_best_isa();
    const std::string v(e);
    for (IgemmIsa i :
         {IgemmIsa::Reference, IgemmIsa::Avx2, IgemmIsa::AvxVnni, IgemmIsa::Avx512Vnni})
      if (v == igemm_isa_name(i)) return clamp_isa(i);
    fail("environment variable ENGINE_ISA='", v,
         "' is not supported (expected reference, avx2, avx_vnni or avx512_vnni)");
  }();
  return isa;
}

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

// ---------------------------------------------------------------- blocking

constexpr int64_t kKP = 192;  // pairs per K slice: a B panel of kKP x 32 words is 24 KB (L1)
constexpr int64_t kMC = 128;  // rows per A block (kMC x kKP words: 96 KB, in L2)
constexpr int64_t kNC = 512;  // columns of a C tile (its packed B slice: 384 KB, in L2)

std::vector<uint32_t>& thread_b_buffer() {
  thread_local std::vector<uint32_t> buf;
  return buf;
}

// C[rows [i0, i0 + m), columns [j0, j0 + n)]: for each K slice, packs the B slice once and runs
// every A block over it. i0 is a multiple of mr.
void simd_tile(const Kernel& kern, int64_t i0, int64_t m, int64_t j0, int64_t n, int64_t K,
               const uint32_t* A, const int16_t* B, int64_t ldb, int32_t* C, int64_t ldc,
               int64_t kpb) {
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kp = (K + 1) / 2;
  std::vector<uint32_t>& buf = thread_b_buffer();
  if (buf.size() < size_t(round_up(n, nr) * kpb)) buf.resize(size_t(round_up(n, nr) * kpb));
  uint32_t* pb = buf.data();
  alignas(64) int32_t tmp[kMaxTile];
  for (int64_t p0 = 0; p0 < kp; p0 += kpb) {
    const int64_t kc = std::min(kpb, kp - p0);
    const bool add = p0 > 0;
    kern.pack_b(B, ldb, K, p0, kc, j0, n, nr, pb);
    for (int64_t ic = 0; ic < m; ic += kMC) {
      const int64_t mc = std::min(kMC, m - ic);
      for (int64_t jr = 0; jr < n; jr += nr) {
        const int cols = int(std::min<int64_t>(nr, n - jr));
        for (int64_t ir = ic; ir < ic + mc; ir += mr) {
          const int rows = int(std::min<int64_t>(mr, m - ir));
          const uint32_t* pa = A + (i0 + ir) * kp + p0 * mr;  // panel (i0 + ir) / mr, slice p0
          int32_t* c = C + (i0 + ir) * ldc + j0 + jr;
          if (rows == mr && cols == nr) {
            kern.micro(kc, pa, pb + jr * kc, c, ldc, add);
            continue;
          }
          kern.micro(kc, pa, pb + jr * kc, tmp, nr, false);
          for (int i = 0; i < rows; ++i)
            for (int j = 0; j < cols; ++j) {
              const int32_t v = tmp[i * nr + j];
              c[i * ldc + j] = add ? int32_t(uint32_t(c[i * ldc + j]) + uint32_t(v)) : v;
            }
        }
      }
    }
  }
}

void simd_gemm(const Kernel& kern, int64_t M, int64_t N, int64_t K, const uint32_t* A,
               const int16_t* B, int64_t ldb, int32_t* C, int64_t ldc, int threads) {
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kp = (K + 1) / 2;                       // pairs
  const int64_t kpb = ceil_div(kp, ceil_div(kp, kKP));  // balanced K slices
  int nt = std::max(1, threads);
#ifdef _OPENMP
  if (omp_in_parallel()) nt = 1;
#endif
  if (double(M) * double(N) * double(K) < 64.0 * 64.0 * 64.0) nt = 1;

  // Tasks: tiles of all rows x at most kNC columns (B is packed once per tile and K slice);
  // with threads, columns are split further, then rows, until every thread has work.
  int64_t nm = 1, nn = ceil_div(N, kNC);
  if (nt > 1) {
    while (nm * nn < 2 * nt || (nm * nn < 8 * nt && (nm * nn) % nt != 0)) {
      if (ceil_div(N, nn) >= 2 * nr)
        ++nn;
      else if (ceil_div(M, nm) >= 2 * mr)
        ++nm;
      else
        break;
    }
  }
  const int64_t mcb = round_up(ceil_div(M, nm), mr);
  const int64_t ncb = std::min(round_up(ceil_div(N, nn), nr), round_up(N, nr));
  nm = ceil_div(M, mcb);
  nn = ceil_div(N, ncb);
  const int64_t tasks = nm * nn;
  nt = int(std::min<int64_t>(nt, tasks));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t i0 = (t / nn) * mcb, j0 = (t % nn) * ncb;
    simd_tile(kern, i0, std::min(mcb, M - i0), j0, std::min(ncb, N - j0), K, A, B, ldb, C, ldc,
              kpb);
  }
}

}  // namespace

// ---------------------------------------------------------------- public interface

const char* igemm_isa_name(IgemmIsa isa) {
  switch (isa) {
    case IgemmIsa::Avx512Vnni:
      return "avx512_vnni";
    case IgemmIsa::AvxVnni:
      return "avx_vnni";
    case IgemmIsa::Avx2:
      return "avx2";
    default:
      return "reference";
  }
}

IgemmIsa igemm_best_isa() {
  static const IgemmIsa best = detect_best();
  return best;
}

IgemmIsa igemm_isa() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? env_isa() : IgemmIsa(o);
}

IgemmIsa set_igemm_isa_for_testing(IgemmIsa isa) {
  const IgemmIsa use = clamp_isa(isa);
  g_override.store(int(use));
  return use;
}

void reset_igemm_isa_for_testing() {
  g_override.store(kNoOverride);
}

IgemmPackedA::IgemmPackedA(int64_t M, int64_t K, const int16_t* A, int64_t lda)
    : M_(M), K_(K), isa_(igemm_isa()) {
  ENGINE_CHECK(M >= 0 && K >= 0 && (M == 0 || K == 0 || lda >= K), "igemm: bad sizes M=", M,
               " K=", K, " lda=", lda);
  if (isa_ == IgemmIsa::Reference) {
    plain_.resize(size_t(M * K));
    for (int64_t i = 0; i < M; ++i) std::copy(A + i * lda, A + i * lda + K, plain_.begin() + i * K);
    return;
  }
  // Panel q holds rows [q * mr, q * mr + mr): word (p, r) at q * mr * kp + p * mr + r.
  const int mr = kernel_for(isa_).mr;
  const int64_t kp = (K + 1) / 2, panels = ceil_div(M, mr);
  pairs_.assign(size_t(panels * mr * kp), 0u);
  for (int64_t i = 0; i < M; ++i) {
    const int16_t* a = A + i * lda;
    uint32_t* d = pairs_.data() + (i / mr) * mr * kp + i % mr;
    for (int64_t p = 0; p < kp; ++p)
      d[p * mr] = pair(a[2 * p], 2 * p + 1 < K ? a[2 * p + 1] : int16_t(0));
  }
}

void igemm_packed(const IgemmPackedA& a, int64_t N, const int16_t* B, int64_t ldb, int32_t* C,
                  int64_t ldc, int threads) {
  const int64_t M = a.M_, K = a.K_;
  if (M <= 0 || N <= 0) return;
  ENGINE_CHECK(ldc >= N && (K == 0 || ldb >= N), "igemm: ldb=", ldb, " / ldc=", ldc,
               " smaller than N=", N);
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0);
    return;
  }
  if (a.isa_ == IgemmIsa::Reference) {
    reference_gemm(M, N, K, a.plain_.data(), K, B, ldb, C, ldc, threads);
    return;
  }
  simd_gemm(kernel_for(a.isa_), M, N, K, a.pairs_.data(), B, ldb, C, ldc, threads);
}

void igemm_s16(int64_t M, int64_t N, int64_t K, const int16_t* A, int64_t lda, const int16_t* B,
               int64_t ldb, int32_t* C, int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  igemm_packed(IgemmPackedA(M, K, A, lda), N, B, ldb, C, ldc, threads);
}

bool cpu_has_avx_vnni() {
  return avx_vnni_supported();
}

}  // namespace engine
