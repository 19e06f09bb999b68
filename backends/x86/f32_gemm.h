// Float32 GEMM with a fused epilogue on AVX-512F register tiles, for channels-last 1x1
// convolutions: NhwcMBConv's expansion and projection (backends/x86/nhwc_mbconv.cpp) and
// NhwcConv's 1x1 convs that add a residual (backends/onednn/conv.cpp, where oneDNN 2.6's sum
// post-op makes its NHWC 1x1 kernel up to 60 % slower).
//
//   C[r][0:N] = clamp(A[r][0:K] x W[0:K][0:N] + bias (+ S[r][0:N]), lo, hi)   for each row r
//
// A row is a pixel's K input channels (of consecutive pixels, or of a strided conv's). Tiles of R
// rows x V vectors of 16 columns (6 x 64, 8 x 48 or 12 x 32 outputs: about 24 accumulators) run
// over chunks of 48 rows, all column blocks of a chunk before the next chunk, so a chunk's A rows
// are read from L1/L2 once per column block. Weights are packed by column panels of the tiles'
// width (f32_gemm_pack), so a tile reads its weights front to back (the hardware prefetcher
// follows; [K][N] rows 8 KB apart made resnet50's 7x7 layers at batch 1 wait on memory); bias [N
// rounded up to 16], zero-padded. Each tile also prefetches the Sum lines of the tile below it
// (they come from far away in memory: a residual written several layers ago). The clamp propagates
// NaN; lo = -inf, hi = +inf is no activation (Relu: lo = 0).
#pragma once

#include <cstdint>
#include <limits>

#include "core/tensor.h"

namespace engine::x86 {

// Whether the own AVX-512F float kernels run here (NhwcMBConv, NhwcConv's 1x1 + residual):
// AVX-512F, and the kernel selection (ops/igemm: CPUID, ENGINE_ISA, test overrides) not lowered
// below this CPU's best level, so ENGINE_ISA=avx2 also tests the paths without them.
bool f32_kernels_available();

struct F32Gemm {
  const float* a = nullptr;  // rows of lda floats
  int64_t lda = 0, K = 0;
  const float* w = nullptr;     // f32_gemm_pack(W, N, K)
  const float* bias = nullptr;  // [f32_gemm_ld(N)]
  int64_t N = 0;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  float* c = nullptr;  // rows of ldc floats
  int64_t ldc = 0;
  const float* sum = nullptr;  // nullptr, or rows of lds floats (may be c itself)
  int64_t lds = 0;
  // A strided 1x1 convolution's rows (map_w > 0): row r is output pixel (n, y, x) of maps of
  // map_h x map_w pixels, its K inputs at a + n * a_image + y * a_row + x * lda. Each chunk of
  // rows is first copied to a contiguous per-thread buffer (48 K floats).
  int64_t map_h = 0, map_w = 0, a_image = 0, a_row = 0;
};

// The GEMM over rows [0, rows), on the calling thread. Needs AVX-512F.
void f32_gemm(const F32Gemm& g, int64_t rows);

// The same, split over `threads` OpenMP threads (chunks of rows, and column blocks too when
// there are few chunks).
void f32_gemm_parallel(const F32Gemm& g, int64_t rows, int threads);

// A channels-last 2-D convolution (one group, no dilation) on the same tiles, as an implicit
// GEMM: row r is output pixel (n, oy, ox) (rows of all images one after another); its K = kh kw
// C values are the input pixels under the kernel, tap by tap (zeros in the padding). The tiles
// run over blocks of k (at most 256 channels of one tap) for every row of a chunk before the
// next block, keeping partial sums in a per-thread buffer, so each weight comes from memory once
// per chunk of up to 288 rows: on small maps (7x7 at batch 1) the weights are the traffic, and
// oneDNN 2.6 streams them more slowly. g: w from f32_conv_pack, K = kh kw C, bias, N (output
// channels), lo / hi, c / ldc, sum / lds as for f32_gemm; g.a / lda / map_* unused.
struct F32Conv {
  F32Gemm g;
  const float* x = nullptr;  // [n][h][w][c]
  int64_t n = 0, h = 0, w = 0, c = 0, kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0, oh = 0,
          ow = 0;
};

// Split over `threads` OpenMP threads: chunks of rows x column blocks.
void f32_conv_parallel(const F32Conv& cv, int threads);

// w: ONNX [M][C][kh][kw] weights -> f32_gemm_pack of [M][kh kw C] (tap-major rows).
Tensor f32_conv_pack(const float* w, int64_t M, int64_t C, int64_t kh, int64_t kw);

int64_t f32_gemm_ld(int64_t n);  // n rounded up to 16

// w: N rows of K floats (ONNX [N, K, 1, 1] weights) -> panels of 64 columns (48 when the
// 16-column vectors divide by 3 and not by 4; the last panel narrower), each K rows of its width;
// K f32_gemm_ld(N) floats, zero-padded.
Tensor f32_gemm_pack(const float* w, int64_t N, int64_t K);

// bias: N floats or nullptr (zeros) -> [f32_gemm_ld(N)], zero-padded.
Tensor f32_gemm_bias(const float* bias, int64_t N);

}  // namespace engine::x86
