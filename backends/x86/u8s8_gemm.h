// u8 x s8 integer GEMM for channels-last INT8 convolutions (backends/x86/nhwc_qconv.cpp):
//
//   C[rows, M] = A[rows, K] x B[K, M]     A uint8 (activations, one row per output pixel),
//                                         B int8 (weights), int32 accumulators wrapping mod 2^32
//
// Integer sums are exact on every path, so all paths give bit-identical results. Paths, chosen at
// run time with the integer GEMM's selection (ops/igemm.h, ENGINE_ISA):
//   avx512_vnni  VPDPBUSD on zmm: 64 u8 x s8 products into 16 int32 lanes per instruction;
//                register tile 6 rows x 64 columns.
//   avx_vnni     the VEX form of VPDPBUSD on ymm (16 registers): tile 6 rows x 16 columns.
//   avx2         no VNNI. VPMADDUBSW would saturate int16 pair sums (255 * 127 * 2 > 32767), so
//                this path widens both operands to int16 (even and odd bytes) and multiplies with
//                VPMADDWD: exact, about a third of the VNNI speed. Tile 4 rows x 16 columns.
//   reference    plain loops over the unpacked weights (the oracle).
// The weights are packed once per path (U8s8Weights); a path the CPU lacks is never selected.
//
// Packed layout: K is padded to Kp = a multiple of 4 (zero weights), M to a multiple of the
// lane width (16 or 8). Columns form panels of `panel` columns (the last one narrower); inside a
// panel, for each group of 4 k, each column's 4 weights are 4 consecutive bytes (the int32 lane
// VPDPBUSD reads). A rows are read as Kp bytes: bytes K..Kp multiply zero weights, so they may
// hold anything.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/igemm.h"
#include "ops/irequant.h"

namespace engine::x86 {

class U8s8Weights {
 public:
  U8s8Weights() = default;
  // w: K x M int8, row-major with leading dimension ldw. Packs for the path in use now.
  U8s8Weights(int64_t K, int64_t M, const int8_t* w, int64_t ldw);
  int64_t depth() const { return K_; }
  int64_t padded_depth() const { return Kp_; }  // the row length A must provide
  int64_t cols() const { return M_; }
  IgemmIsa isa() const { return isa_; }
  int64_t panels() const { return int64_t(panel_start_.size()) - 1; }
  int64_t panel_begin(int64_t p) const { return panel_start_[size_t(p)]; }
  int64_t panel_end(int64_t p) const { return std::min(panel_start_[size_t(p) + 1], M_); }
  // Columns of panel p in the packed layout (a multiple of the lane width) and its packed bytes.
  int64_t panel_width(int64_t p) const {
    return panel_start_[size_t(p) + 1] - panel_start_[size_t(p)];
  }
  const int8_t* panel_data(int64_t p) const { return packed_.data() + Kp_ * panel_begin(p); }
  const int8_t* plain() const { return plain_.data(); }  // reference path: K x M

 private:
  int64_t K_ = 0, Kp_ = 0, M_ = 0;
  IgemmIsa isa_ = IgemmIsa::Reference;
  std::vector<int64_t> panel_start_{0};  // column of each panel; the last entry: padded M
  std::vector<int8_t> packed_;           // SIMD paths
  std::vector<int8_t> plain_;            // reference: K x M, ld = M
};

// Receives finished tiles of C: rows [r0, r0 + rows) x columns [c0, c0 + cols) of the GEMM, in
// `tile` with leading dimension ldt.
using TileSink = void (*)(void* ctx, int64_t r0, int64_t rows, int64_t c0, int64_t cols,
                          const int32_t* tile, int64_t ldt);

// Requantization inside the micro-kernel (avx512_vnni path): full tiles (all tile rows, every
// column of the panel) are requantized straight from the accumulator registers into y with the
// per-channel constants of `lanes` (column j = channel j; requant_channels_simd's math, shared
// through ops/irequant_avx512.h); the other tiles still go to the sink. The caller checks that
// the SIMD requantization takes these constants (requant_channels_fusable).
struct FusedOutput {
  const ChannelLanes* lanes = nullptr;
  uint8_t* y = nullptr;          // GEMM row r, column j at y[r * ldy + j] (row 0 of this call)
  Q8Type y_type = Q8Type::U8;    // the output type (U8 or I8)
  const uint8_t* sum = nullptr;  // optional residual input, laid out like y
  Q8Type sum_type = Q8Type::None;
  int64_t ldy = 0;
};

// Prefetches rows [r0, r1) x cols bytes of y (for writing) and of sum (if any), row stride ld:
// the output lines of the next tile, which the hardware prefetcher misses at that stride (the
// residual-sum loads stalled the requantization).
inline void prefetch_rows(const uint8_t* y, const uint8_t* sum, int64_t ld, int64_t r0, int64_t r1,
                          int64_t cols) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t i = 0; i < cols; i += 64) {
      if (sum) __builtin_prefetch(sum + r * ld + i, 0, 3);
      __builtin_prefetch(y + r * ld + i, 1, 3);
    }
}

class U8s8Gemm {
 public:
  // Row tile height of the path of `w` (work is best split in multiples of it).
  static int64_t row_tile(const U8s8Weights& w);
  // C rows [0, rows) x column panels [p0, p1) of w, each tile passed to sink. A: rows x Kp bytes
  // with leading dimension lda >= Kp. Runs on the calling thread. With `fused` (used only on the
  // avx512_vnni path), full tiles are requantized by the micro-kernel instead of the sink.
  static void run(const U8s8Weights& w, const uint8_t* A, int64_t lda, int64_t rows, int64_t p0,
                  int64_t p1, TileSink sink, void* ctx, const FusedOutput* fused = nullptr);
  // The same with indirect rows (a convolution without an im2col copy): row r of A is the
  // concatenation over t < taps of the K / taps bytes at ind[r * taps + t] (an input pixel's
  // channels, or a vector of zero points for padding). Needs indirect_ok(w, taps): K / taps a
  // multiple of 4.
  static bool indirect_ok(const U8s8Weights& w, int64_t taps);
  static void run_indirect(const U8s8Weights& w, const uint8_t* const* ind, int64_t taps,
                           int64_t rows, int64_t p0, int64_t p1, TileSink sink, void* ctx,
                           const FusedOutput* fused = nullptr);
};

}  // namespace engine::x86
