// Integer GEMM of the INT8 kernels (ops/qconv.cpp, ops/qgemm.cpp):
//
//   C[M,N] = A[M,K] x B[K,N]   int16 operands, int32 accumulators wrapping modulo 2^32
//
// row-major with leading dimensions lda / ldb / ldc; C is overwritten. Integer sums are exact and
// every path wraps the same way, so all paths give bit-identical results.
//
// Paths, chosen at run time (the binary stays portable, no -march flags):
//   avx512_vnni  vpdpwssd (_mm512_dpwssd_epi32): 32 int16 products added into 16 int32 lanes per
//                instruction; register tile of 8 rows x 32 columns.
//   avx2         vpmaddwd + vpaddd (_mm256_madd_epi16): 16 products per instruction; 2 x 32 tile
//                (measured faster than 6 x 16 or 4 x 16 on Zen 5).
//   reference    plain C++ loops (the oracle; also the fallback on other CPUs).
// The best path the CPU supports is used, unless the environment variable
//   ENGINE_ISA=reference|avx2|avx_vnni|avx512_vnni   (read once, at the first GEMM)
// asks for another one; a path the CPU lacks falls back to the best one below it. An unknown
// value makes the first integer GEMM throw. The same selection applies to the SIMD requantization
// (ops/irequant.h). Tests switch paths with set_igemm_isa_for_testing.
//
// SIMD layout: madd / dpwssd multiply adjacent int16 pairs and add both products into one int32
// lane, so K is taken two at a time. A is packed in panels of MR rows, 32-bit word (p, r) of a
// panel = {A[r][2p], A[r][2p+1]} (broadcast to every lane); B in panels of NR columns, word
// (p, c) = {B[2p][c], B[2p+1][c]}. Odd K and rows / columns past the edges are zero-padded.
// Blocking follows ops/sgemm.cpp (BLIS style): K in slices whose B panel stays in L1, tiles of
// C as OpenMP tasks.
#pragma once

#include <cstdint>
#include <vector>

namespace engine {

// Ordered: a higher level needs every feature of the lower ones. avx_vnni: AVX2 plus the VEX
// form of VPDPBUSD (ymm); the int16 GEMM here has no avx_vnni kernel of its own and runs the avx2
// one there (the u8 x s8 GEMM of backends/x86/u8s8_gemm.h does use it).
enum class IgemmIsa { Reference = 0, Avx2 = 1, AvxVnni = 2, Avx512Vnni = 3 };

// "reference", "avx2", "avx_vnni", "avx512_vnni"
const char* igemm_isa_name(IgemmIsa isa);
IgemmIsa igemm_best_isa();  // the best path this CPU supports
IgemmIsa igemm_isa();       // the path in use (best, or lowered by ENGINE_ISA)
bool cpu_has_avx_vnni();    // AVX-VNNI (VEX-encoded VPDPBUSD on ymm) and AVX2
// Process-wide override for tests and benchmarks: uses `isa`, or the best supported path below
// it; returns the path now in use. Not thread-safe against running GEMMs.
IgemmIsa set_igemm_isa_for_testing(IgemmIsa isa);
void reset_igemm_isa_for_testing();  // back to ENGINE_ISA / the best path

// A operand packed once for the path in use when it was built (e.g. conv weights reused by many
// GEMMs); keeps that path even if the selection changes afterwards.
class IgemmPackedA {
 public:
  IgemmPackedA() = default;
  IgemmPackedA(int64_t M, int64_t K, const int16_t* A, int64_t lda);
  int64_t rows() const { return M_; }
  int64_t depth() const { return K_; }
  IgemmIsa isa() const { return isa_; }

 private:
  friend void igemm_packed(const IgemmPackedA& a, int64_t N, const int16_t* B, int64_t ldb,
                           int32_t* C, int64_t ldc, int threads);
  int64_t M_ = 0, K_ = 0;
  IgemmIsa isa_ = IgemmIsa::Reference;
  std::vector<uint32_t> pairs_;  // SIMD paths: MR-row panels of int16 pairs
  std::vector<int16_t> plain_;   // reference path: A copied with lda = K
};

// C[M,N] = a x B, M and K from `a`. threads > 1: tiles of C run in parallel (from inside an
// active OpenMP parallel region the call runs on the calling thread only).
void igemm_packed(const IgemmPackedA& a, int64_t N, const int16_t* B, int64_t ldb, int32_t* C,
                  int64_t ldc, int threads);

// One-shot product: packs A, then igemm_packed.
void igemm_s16(int64_t M, int64_t N, int64_t K, const int16_t* A, int64_t lda, const int16_t* B,
               int64_t ldb, int32_t* C, int64_t ldc, int threads);

}  // namespace engine
