// Single-precision GEMM shared by Gemm, MatMul, Conv and ConvTranspose.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
//
// All matrices are row-major with explicit leading dimensions (distance in elements between two
// consecutive rows of the matrix as stored):
//   op(A) = A   (A stored M x K, lda >= K)   or  A^T (trans_a: A stored K x M, lda >= M)
//   op(B) = B   (B stored K x N, ldb >= N)   or  B^T (trans_b: B stored N x K, ldb >= K)
//   C stored M x N, ldc >= N.
// When beta == 0, C is not read (it may hold garbage or NaN), as in BLAS.
//
// The implementation is cache blocked (panels of A and B are packed into contiguous buffers sized
// for L1/L2), with an MR x NR register micro-tile written with GCC/Clang vector extensions, an
// AVX2+FMA variant selected at run time when the CPU has it, and OpenMP over blocks of C.
// Matrix-vector-like shapes (M or N <= 8) take an unpacked dot-product path. Results may differ
// in the last bits between paths (summation order), not between runs.
#pragma once

#include <cstdint>

namespace engine {

// num_threads <= 0: OpenMP's default (omp_get_max_threads()). When called from inside an active
// OpenMP parallel region the call runs on the calling thread only.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           int num_threads = 0);

// Convenience for the common contiguous case: C[M,N] = A[M,K] * B[K,N] (+ C if accumulate).
inline void matmul_f32(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
                       bool accumulate = false, int num_threads = 0) {
  sgemm(false, false, M, N, K, 1.0f, A, K, B, N, accumulate ? 1.0f : 0.0f, C, N, num_threads);
}

// Plain triple loop with double accumulation; same contract as sgemm. For tests and debugging.
void sgemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc);

// Name of the micro-kernel sgemm uses on this CPU ("avx2+fma 6x16" or "generic 6x8").
const char* sgemm_kernel_name();
// Tests/benchmarks only: use the portable kernel even where AVX2 is available (process-wide).
void sgemm_force_generic_kernel(bool on);

}  // namespace engine
