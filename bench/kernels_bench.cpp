// Micro-benchmarks of the INT8 building blocks (Google Benchmark): per-channel requantization of
// accumulator tiles as the GEMM and depthwise kernels hand them over. Not part of the test suite.
//   build/kernels_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ops/irequant.h"
#include "ops/qgemm_core.h"

namespace {

using namespace engine;
using namespace engine::qops;

// A rows x channels tile, requantized with per-channel fixed-point multipliers (or float).
void requant_tile(benchmark::State& state, bool fixed, bool with_sum = false) {
  const int64_t rows = state.range(0), C = state.range(1);
  std::mt19937 rng(1);
  std::vector<int32_t> acc(size_t(rows * C));
  for (auto& a : acc) a = int32_t(rng() % 200001) - 100000;
  std::vector<float> ws(static_cast<size_t>(C));
  for (auto& w : ws) w = 0.001f + float(rng() % 1000) * 1e-5f;
  RequantAttrs ra;
  ra.mode = fixed ? quant::RequantMode::Fixed : quant::RequantMode::Float;
  ra.lo = 0, ra.hi = 255;
  ChannelRequant rq(ra, 0.02f, ws, 0.05f, 3);
  if (with_sum) rq.set_sum(0.07f, 5, 0.05f);  // sum multiplier 1.4: a left shift
  std::vector<RequantRow> rr(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) rr[size_t(c)] = rq.row(c, 0);
  const ChannelLaneTables lanes(rr, std::vector<int32_t>(size_t(C), 7));
  std::vector<uint8_t> y(size_t(rows * C));
  ChannelTile t;
  std::vector<uint8_t> sum(size_t(rows * C));
  for (auto& v : sum) v = uint8_t(rng());
  t.acc = acc.data(), t.lda = C, t.rows = rows, t.y = y.data(), t.ldy = C;
  if (with_sum) t.sum = sum.data();
  for (auto _ : state) {
    requant_channels_simd(lanes.lanes(), 0, C, t, Q8Type::U8, with_sum ? Q8Type::U8 : Q8Type::None);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * C);
}

void BM_RequantFixed(benchmark::State& s) {
  requant_tile(s, true);
}
void BM_RequantFloat(benchmark::State& s) {
  requant_tile(s, false);
}
void BM_RequantFixedSum(benchmark::State& s) {
  requant_tile(s, true, true);
}
void BM_RequantFloatSum(benchmark::State& s) {
  requant_tile(s, false, true);
}
BENCHMARK(BM_RequantFixedSum)->Args({6, 64})->Args({56, 144});
BENCHMARK(BM_RequantFloatSum)->Args({6, 64})->Args({56, 144});
BENCHMARK(BM_RequantFixed)->Args({6, 64})->Args({112, 16})->Args({56, 144});
BENCHMARK(BM_RequantFloat)->Args({6, 64})->Args({112, 16})->Args({56, 144});

}  // namespace

BENCHMARK_MAIN();
