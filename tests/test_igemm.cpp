// Tests of the integer GEMM paths (ops/igemm.h) and of the SIMD requantization (ops/irequant.h):
// every path this CPU supports, forced with set_igemm_isa_for_testing, against naive loops
// written here (int64 sums wrapped to int32; the scalar requantization of quant/fixedpoint.h).
// Integer results must be bit-identical on every path. The ENGINE_ISA variable is tested through
// the engine executable (suite "cli").
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "ops/igemm.h"
#include "ops/irequant.h"
#include "quant/fixedpoint.h"

using namespace engine;

namespace {

const IgemmIsa kAllIsas[] = {IgemmIsa::Reference, IgemmIsa::Avx2, IgemmIsa::Avx512Vnni};

struct RestoreIsa {
  ~RestoreIsa() { reset_igemm_isa_for_testing(); }
};

// The paths this CPU supports (Reference always).
std::vector<IgemmIsa> supported_isas() {
  RestoreIsa restore;
  std::vector<IgemmIsa> v;
  for (IgemmIsa isa : kAllIsas)
    if (set_igemm_isa_for_testing(isa) == isa) v.push_back(isa);
  return v;
}

std::vector<int16_t> rand16(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> u(lo, hi);
  std::vector<int16_t> v(n);
  for (int16_t& x : v) x = int16_t(u(rng));
  return v;
}

// C = A x B, sums modulo 2^32 (the contract of every path).
std::vector<int32_t> naive_gemm(int64_t M, int64_t N, int64_t K, const int16_t* A, int64_t lda,
                                const int16_t* B, int64_t ldb) {
  std::vector<int32_t> c(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      uint32_t s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += uint32_t(int32_t(A[i * lda + k]) * int32_t(B[k * ldb + j]));
      c[size_t(i * N + j)] = int32_t(s);
    }
  return c;
}

// Runs igemm_s16 with padded leading dimensions and checks C against the naive product; the
// padding columns of C must stay untouched.
void check_gemm(std::mt19937& rng, int64_t M, int64_t N, int64_t K, int threads, int lo = -255,
                int hi = 255) {
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(threads);
  const int64_t lda = K + 3, ldb = N + 5, ldc = N + 2;
  const std::vector<int16_t> A = rand16(rng, size_t(M * lda), lo, hi);
  const std::vector<int16_t> B = rand16(rng, size_t(std::max<int64_t>(K, 1) * ldb), lo, hi);
  const std::vector<int32_t> want = naive_gemm(M, N, K, A.data(), lda, B.data(), ldb);
  constexpr int32_t kCanary = -123456789;
  std::vector<int32_t> C(size_t(M * ldc), kCanary);
  igemm_s16(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, threads);
  int64_t bad = 0, canary = 0;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) bad += C[size_t(i * ldc + j)] != want[size_t(i * N + j)];
    for (int64_t j = N; j < ldc; ++j) canary += C[size_t(i * ldc + j)] != kCanary;
  }
  CHECK(bad == 0);
  CHECK(canary == 0);
}

}  // namespace

TEST_CASE("igemm: every path equals a naive loop on odd and edge shapes") {
  RestoreIsa restore;
  const std::vector<IgemmIsa> isas = supported_isas();
  const int64_t dims[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 47, 61, 64, 67, 70};
  for (IgemmIsa isa : isas) {
    INFO("path ", std::string(igemm_isa_name(isa)));
    REQUIRE(set_igemm_isa_for_testing(isa) == isa);
    CHECK(igemm_isa() == isa);
    std::mt19937 rng(11);
    for (int t = 0; t < 150; ++t) {
      const int64_t M = dims[rng() % std::size(dims)], N = dims[rng() % std::size(dims)];
      int64_t K = dims[rng() % std::size(dims)];
      if (t % 3 == 0) K |= 1;  // odd K: the last int16 pair is half padding
      check_gemm(rng, M, N, K, t % 2 ? 2 : 1);
    }
    // Several K slices, row and column tiles, threads splitting rows and columns.
    check_gemm(rng, 67, 1031, 401, 2);
    check_gemm(rng, 301, 45, 777, 2);
    check_gemm(rng, 9, 2000, 3, 2);
    check_gemm(rng, 200, 7, 1153, 1);
  }
}

TEST_CASE("igemm: the full int16 range wraps modulo 2^32 on every path") {
  RestoreIsa restore;
  for (IgemmIsa isa : supported_isas()) {
    INFO("path ", std::string(igemm_isa_name(isa)));
    set_igemm_isa_for_testing(isa);
    std::mt19937 rng(3);
    check_gemm(rng, 11, 37, 29, 1, -32768, 32767);
    // All -32768: every pair of products adds 2^31 (vpmaddwd's one overflowing case), and the
    // sums of K = 4001 products overflow int32 many times.
    const int64_t M = 9, N = 33, K = 4001;
    const std::vector<int16_t> A(size_t(M * K), int16_t(-32768)), B(size_t(K * N), int16_t(-32768));
    std::vector<int32_t> C(size_t(M * N));
    igemm_s16(M, N, K, A.data(), K, B.data(), N, C.data(), N, 2);
    const int32_t want = int32_t(uint32_t(uint64_t(K) << 30));  // K * 2^30 mod 2^32
    CHECK(std::count(C.begin(), C.end(), want) == M * N);
  }
}

TEST_CASE("igemm: packed A keeps its path; K = 0 gives zeros; path names") {
  RestoreIsa restore;
  std::mt19937 rng(5);
  const int64_t M = 13, N = 40, K = 21;
  const std::vector<int16_t> A = rand16(rng, size_t(M * K), -255, 255);
  const std::vector<int16_t> B = rand16(rng, size_t(K * N), -255, 255);
  const std::vector<int32_t> want = naive_gemm(M, N, K, A.data(), K, B.data(), N);
  for (IgemmIsa isa : supported_isas()) {
    set_igemm_isa_for_testing(isa);
    const IgemmPackedA pa(M, K, A.data(), K);
    CHECK(pa.isa() == isa);
    CHECK(pa.rows() == M);
    CHECK(pa.depth() == K);
    for (IgemmIsa other : supported_isas()) {  // run under every other selection
      set_igemm_isa_for_testing(other);
      std::vector<int32_t> C(size_t(M * N));
      igemm_packed(pa, N, B.data(), N, C.data(), N, 1);
      CHECK(C == want);
    }
    set_igemm_isa_for_testing(isa);
    std::vector<int32_t> Z(size_t(M * N), 7);
    igemm_s16(M, N, 0, A.data(), K, B.data(), N, Z.data(), N, 1);
    CHECK(std::count(Z.begin(), Z.end(), 0) == M * N);
  }
  CHECK(std::string(igemm_isa_name(IgemmIsa::Reference)) == "reference");
  CHECK(std::string(igemm_isa_name(IgemmIsa::Avx2)) == "avx2");
  CHECK(std::string(igemm_isa_name(IgemmIsa::Avx512Vnni)) == "avx512_vnni");
  // A path the CPU lacks falls back to the best one below it.
  CHECK(set_igemm_isa_for_testing(IgemmIsa::Avx512Vnni) == igemm_best_isa());
}

// ------------------------------------------------------------------ requantization

namespace {

// The scalar requantization (what ChannelRequant computes), from quant/fixedpoint.h.
int32_t scalar_requant(const RequantRow& r, int32_t acc, bool has_sum, int32_t sum) {
  const int32_t x = int32_t(uint32_t(acc) + uint32_t(r.bias));
  const int32_t ds = sum - r.sum_zp;
  if (r.fixed) {
    int64_t v = int64_t(r.zp) + quant::apply_multiplier(x, r.fm);
    if (has_sum) v += quant::apply_multiplier(ds, r.sum_fm);
    return int32_t(std::clamp<int64_t>(v, r.lo, r.hi));
  }
  if (!has_sum) return r.zp + quant::apply_float_multiplier(x, r.m, r.lo - r.zp, r.hi - r.zp);
  float v = float(x) * r.m + float(ds) * r.sum_m;
  v = std::min(std::max(v, float(r.lo - r.zp)), float(r.hi - r.zp));
  return r.zp + int32_t(std::nearbyint(v));
}

int32_t random_acc(std::mt19937& rng) {
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  switch (rng() % 8) {
    case 0:  // extremes and their neighbours
      return std::vector<int32_t>{kMin, kMin + 1, kMax, kMax - 1, 0, -1, 1}[rng() % 7];
    case 1:
      return int32_t(rng());  // any int32
    case 2:  // exact ties of small multipliers: multiples of powers of two, +- 0.5 steps
      return int32_t((int64_t(rng() % 2001) - 1000) << (rng() % 12));
    default:
      return int32_t(int64_t(rng() % 400001) - 200000);
  }
}

}  // namespace

TEST_CASE("requant_row_simd equals the scalar requantization (fixed / float, sums, edges)") {
  RestoreIsa restore;
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> logm(-36.0, 6.0);  // multipliers 2^-36 .. 2^6
  for (IgemmIsa isa : supported_isas()) {
    INFO("path ", std::string(igemm_isa_name(isa)));
    set_igemm_isa_for_testing(isa);
    int64_t simd_rows = 0;
    for (int t = 0; t < 3000; ++t) {
      RequantRow r;
      r.fixed = t % 2 == 0;
      const int bits = t % 7 == 3 ? int(1 + rng() % 31) : 31;
      const double m = std::exp2(logm(rng)), sm = std::exp2(logm(rng) / 4);
      r.fm = quant::decompose_multiplier(t % 53 == 0 ? 0.0 : m, bits);
      r.sum_fm = quant::decompose_multiplier(sm, bits);
      r.m = float(m);
      r.sum_m = float(sm);
      const Q8Type yt = rng() % 2 ? Q8Type::U8 : Q8Type::I8;
      const int32_t cmin = yt == Q8Type::U8 ? 0 : -128, cmax = yt == Q8Type::U8 ? 255 : 127;
      r.lo = cmin + int32_t(rng() % 3 == 0 ? rng() % 40 : 0);
      r.hi = cmax - int32_t(rng() % 3 == 0 ? rng() % 40 : 0);
      r.zp = cmin + int32_t(rng() % uint32_t(cmax - cmin + 1));
      r.bias = t % 5 == 0 ? int32_t(rng()) : int32_t(rng() % 20001) - 10000;
      const Q8Type st = rng() % 3 == 0 ? Q8Type::None : rng() % 2 ? Q8Type::U8 : Q8Type::I8;
      r.sum_zp = st == Q8Type::I8 ? int32_t(rng() % 256) - 128 : int32_t(rng() % 256);
      const int64_t n = int64_t(rng() % 41);  // 0..40: tails of every length
      std::vector<int32_t> acc(static_cast<size_t>(n));
      std::vector<uint8_t> sum(static_cast<size_t>(n));
      for (int32_t& a : acc) a = random_acc(rng);
      for (uint8_t& s : sum) s = uint8_t(rng());
      std::vector<uint8_t> y(size_t(n) + 1, 0xAB);
      const bool done = requant_row_simd(r, acc.data(), n, y.data(), yt,
                                         st == Q8Type::None ? nullptr : sum.data(), st);
      CHECK(done == (isa != IgemmIsa::Reference));
      CHECK(y[size_t(n)] == 0xAB);  // nothing written past the row
      if (!done) continue;
      ++simd_rows;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t s = st == Q8Type::I8 ? int32_t(int8_t(sum[size_t(i)])) : sum[size_t(i)];
        const int32_t want = scalar_requant(r, acc[size_t(i)], st != Q8Type::None, s);
        const int32_t got = yt == Q8Type::U8 ? y[size_t(i)] : int8_t(y[size_t(i)]);
        if (got != want) {
          INFO("fixed=", r.fixed, " q=", r.fm.q, " exp=", r.fm.exp, " m=", r.m,
               " acc=", acc[size_t(i)], " bias=", r.bias, " sum=", s, " zp=", r.zp, " lo=", r.lo,
               " hi=", r.hi);
          CHECK(got == want);
        }
      }
    }
    if (isa != IgemmIsa::Reference) CHECK(simd_rows > 2500);
  }
}

TEST_CASE("requant_channels_simd equals the scalar requantization per channel (tiles, edges)") {
  RestoreIsa restore;
  std::mt19937 rng(29);
  std::uniform_real_distribution<double> logm(-36.0, 6.0);
  for (IgemmIsa isa : supported_isas()) {
    INFO("path ", std::string(igemm_isa_name(isa)));
    set_igemm_isa_for_testing(isa);
    int64_t simd_tiles = 0;
    for (int t = 0; t < 1500; ++t) {
      const int64_t M = 1 + int64_t(rng() % 70), rows = 1 + int64_t(rng() % 7);
      const int64_t c0 = int64_t(rng() % uint32_t(M)), n = 1 + int64_t(rng() % uint32_t(M - c0));
      const bool fixed = t % 2 == 0;
      const int bits = t % 7 == 3 ? int(1 + rng() % 31) : 31;
      const Q8Type yt = rng() % 2 ? Q8Type::U8 : Q8Type::I8;
      const int32_t cmin = yt == Q8Type::U8 ? 0 : -128, cmax = yt == Q8Type::U8 ? 255 : 127;
      const Q8Type st = rng() % 3 == 0 ? Q8Type::None : rng() % 2 ? Q8Type::U8 : Q8Type::I8;
      RequantRow common;
      common.fixed = fixed;
      common.lo = cmin + int32_t(rng() % 3 == 0 ? rng() % 40 : 0);
      common.hi = cmax - int32_t(rng() % 3 == 0 ? rng() % 40 : 0);
      common.zp = cmin + int32_t(rng() % uint32_t(cmax - cmin + 1));
      const double sm = std::exp2(logm(rng) / 4);
      common.sum_fm = quant::decompose_multiplier(sm, bits);
      common.sum_m = float(sm);
      common.sum_zp = st == Q8Type::I8 ? int32_t(rng() % 256) - 128 : int32_t(rng() % 256);
      // Per channel: a multiplier (one range per tile: all below 1, or some above) and a bias.
      const double top = rng() % 2 ? 0.0 : 6.0;
      std::uniform_real_distribution<double> lm(-36.0, top);
      std::vector<RequantRow> rr(size_t(M), common);
      std::vector<int32_t> off(static_cast<size_t>(M));
      for (int64_t c = 0; c < M; ++c) {
        const double m = std::exp2(lm(rng));
        rr[size_t(c)].fm = quant::decompose_multiplier(rng() % 53 == 0 ? 0.0 : m, bits);
        rr[size_t(c)].m = float(m);
        off[size_t(c)] = t % 5 == 0 ? int32_t(rng()) : int32_t(rng() % 20001) - 10000;
      }
      const ChannelLaneTables lanes(rr, off);
      const int64_t lda = n + int64_t(rng() % 3), ldy = n + 1 + int64_t(rng() % 3);
      std::vector<int32_t> acc(size_t(rows * lda));
      for (int32_t& a : acc) a = random_acc(rng);
      std::vector<uint8_t> sum(size_t(rows * ldy)), y(size_t(rows * ldy), 0xAB);
      for (uint8_t& v : sum) v = uint8_t(rng());
      ChannelTile tile;
      tile.acc = acc.data(), tile.lda = lda, tile.rows = rows, tile.y = y.data(), tile.ldy = ldy;
      tile.sum = st == Q8Type::None ? nullptr : sum.data();
      const bool done = lanes.simd() && requant_channels_simd(lanes.lanes(), c0, n, tile, yt, st);
      CHECK(done == (isa != IgemmIsa::Reference));
      if (!done) continue;
      ++simd_tiles;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = n; i < ldy; ++i) CHECK(y[size_t(r * ldy + i)] == 0xAB);
        for (int64_t i = 0; i < n; ++i) {
          RequantRow want_row = rr[size_t(c0 + i)];
          want_row.bias = off[size_t(c0 + i)];
          const uint8_t sb = sum[size_t(r * ldy + i)];
          const int32_t s = st == Q8Type::I8 ? int32_t(int8_t(sb)) : int32_t(sb);
          const int32_t a = acc[size_t(r * lda + i)];
          const int32_t want = scalar_requant(want_row, a, st != Q8Type::None, s);
          const uint8_t yb = y[size_t(r * ldy + i)];
          const int32_t got = yt == Q8Type::U8 ? int32_t(yb) : int32_t(int8_t(yb));
          if (got != want) {
            INFO("fixed=", fixed, " channel=", c0 + i, " q=", want_row.fm.q,
                 " exp=", want_row.fm.exp, " acc=", a, " off=", want_row.bias, " sum=", s);
            CHECK(got == want);
          }
        }
      }
    }
    if (isa != IgemmIsa::Reference) CHECK(simd_tiles > 1400);
  }
}

TEST_CASE("sum_lut: the residual sum's fixed-point terms by table, and when there is none") {
  // ChannelLanes::sum_lut holds apply_multiplier(s - sum_zp, sum_fm) for every sum byte s when
  // the CPU has AVX-512 VBMI, every term fits in int16 and every channel's multiplier is below
  // 1/2; sum_terms_rows looks terms up for rows of sum bytes.
  const bool vbmi = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vbmi");
  auto tables = [](double m, double sum_m, int32_t sum_zp, bool fixed = true) {
    RequantRow r;
    r.fixed = fixed;
    r.sum_fm = quant::decompose_multiplier(sum_m);
    r.sum_m = float(sum_m);
    r.sum_zp = sum_zp;
    std::vector<RequantRow> rows(20, r);
    for (size_t c = 0; c < rows.size(); ++c) {
      const double mc = c == 7 ? m : 0.001 * double(c + 1);  // channel 7: the one under test
      rows[c].fm = quant::decompose_multiplier(c == 3 ? 0.0 : mc);
      rows[c].m = float(mc);
    }
    return ChannelLaneTables(rows, std::vector<int32_t>(rows.size(), 0));
  };
  // When: multipliers just below 1/2 and terms up to 255 * 128 = 32640 (u8 sum, zero point 0).
  CHECK((tables(0.4999, 128.0, 0).lanes().sum_lut != nullptr) == vbmi);
  CHECK(tables(0.5, 1.0, 0).lanes().sum_lut == nullptr);         // a multiplier of 1/2
  CHECK(tables(3.0, 1.0, 0).lanes().sum_lut == nullptr);         // a left shift
  CHECK(tables(0.1, 128.6, 0).lanes().sum_lut == nullptr);       // 255 * 128.6 > 32767
  CHECK(tables(0.1, 128.6, 128).lanes().sum_lut == nullptr);     // int8 sums: -128 - 128
  CHECK(tables(0.1, 1.0, 0, false).lanes().sum_lut == nullptr);  // float mode
  if (!vbmi) return;
  std::mt19937 rng(5);
  for (int t = 0; t < 200; ++t) {
    const double sm = std::exp2(std::uniform_real_distribution<double>(-30.0, 6.25)(rng));
    const int32_t szp = int32_t(rng() % 256) - (t % 2 ? 128 : 0);
    const ChannelLaneTables lt = tables(0.3, sm, szp);
    const ChannelLanes& L = lt.lanes();
    REQUIRE(L.sum_lut != nullptr);
    const int rows = 1 + int(rng() % 6), n = 1 + int(rng() % 64);
    const int64_t ldy = n + int64_t(rng() % 100);
    std::vector<uint8_t> sum(size_t(rows * ldy));
    for (uint8_t& b : sum) b = uint8_t(rng());
    if (t == 0) std::fill(sum.begin(), sum.end(), uint8_t(0x80));  // -128 / 128: bit 7 alone
    for (int type = 0; type < 2; ++type) {
      std::vector<int16_t> out(size_t(rows) * 64);
      sum_terms_rows(sum.data(), ldy, rows, n, L.sum_lut + 512 * type, out.data());
      for (int r = 0; r < rows; ++r)
        for (int i = 0; i < n; ++i) {
          const uint8_t b = sum[size_t(r * ldy + i)];
          const int32_t s = type == 0 ? int32_t(b) : int32_t(int8_t(b));
          const int32_t want = quant::apply_multiplier(s - szp, L.common.sum_fm);
          if (out[size_t(r * 64 + i)] != want) {
            INFO("sum multiplier ", sm, " zero point ", szp, " type ", type, " byte ", int(b));
            CHECK(out[size_t(r * 64 + i)] == want);
          }
        }
    }
  }
}

TEST_CASE("igemm timing (run with --no-skip)" * doctest::skip()) {
  RestoreIsa restore;
  struct Shape {
    int64_t M, N, K;
  };
  // GEMMs of the convolutions of a CIFAR ResNet-18 (one work item each) and a square one.
  const Shape shapes[] = {
      {64, 1024, 576}, {128, 1792, 1152}, {256, 448, 2304}, {512, 256, 4608}, {512, 512, 512}};
  for (IgemmIsa isa : supported_isas()) {
    set_igemm_isa_for_testing(isa);
    for (const Shape& s : shapes) {
      std::mt19937 rng(1);
      const std::vector<int16_t> A = rand16(rng, size_t(s.M * s.K), -255, 255);
      const std::vector<int16_t> B = rand16(rng, size_t(s.K * s.N), -255, 255);
      std::vector<int32_t> C(size_t(s.M * s.N));
      const IgemmPackedA pa(s.M, s.K, A.data(), s.K);
      for (int threads : {1, 2}) {
        std::vector<double> t;
        for (int r = 0; r < 5; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          igemm_packed(pa, s.N, B.data(), s.N, C.data(), s.N, threads);
          t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(t.begin(), t.end());
        MESSAGE(std::string(igemm_isa_name(isa)), " ", s.M, "x", s.N, "x", s.K, " threads ",
                threads, ": ", double(s.M * s.N * s.K) / t[2] / 1e9, " GMAC/s");
      }
    }
  }
}

// ------------------------------------------------------------------ ENGINE_ISA (the executable)

TEST_SUITE("cli") {
  TEST_CASE("ENGINE_ISA selects the integer kernel path: identical INT8 results; bad values") {
    const std::string src = ENGINE_SOURCE_DIR;
    const std::string args = "run " + src + "/demo/fashion_resnet8.onnx --random --batch 3 " +
                             "--int8 --calib " + src + "/demo/images --topk 3 --threads 2";
    auto run_with = [&](const char* isa) {
      ::setenv("ENGINE_ISA", isa, 1);
      test::CliResult r = test::run_cli(args);
      ::unsetenv("ENGINE_ISA");
      // Drop the timing lines ("loaded in 48.1 ms", "time: first run 3.46 ms") and the avx2
      // path's note on its exact int16 products (checked below).
      std::string kept, line;
      for (std::istringstream in(r.out); std::getline(in, line);)
        if (line.find(" ms") == std::string::npos && line.rfind("note: no VNNI", 0) != 0)
          kept += line + "\n";
      const bool note =
          r.out.find("note: no VNNI on this CPU (or ENGINE_ISA=avx2)") != std::string::npos;
      r.out = kept;
      return std::make_pair(r, note);
    };
    const auto [ref, ref_note] = run_with("reference");
    CAPTURE(ref.out);
    REQUIRE(ref.exit_code == 0);
    CHECK(ref.out.find("quantized") != std::string::npos);
    CHECK(ref.out.find("1. class") != std::string::npos);
    CHECK(!ref_note);
    for (const char* isa : {"avx2", "avx_vnni", "avx512_vnni"}) {
      CAPTURE(std::string(isa));
      const auto [r, note] = run_with(isa);  // falls back where the CPU lacks the path
      CHECK(r.exit_code == 0);
      CHECK(r.out == ref.out);
      // The no-VNNI path says it widens to int16 (exact); the VNNI paths say nothing.
      if (std::string(isa) == "avx2" && set_igemm_isa_for_testing(IgemmIsa::Avx2) == IgemmIsa::Avx2)
        CHECK(note);
      reset_igemm_isa_for_testing();
    }
    const test::CliResult bad = run_with("sse9").first;
    CHECK(bad.exit_code == 1);
    CHECK(bad.out.find("ENGINE_ISA='sse9' is not supported (expected reference, avx2, avx_vnni "
                       "or avx512_vnni)") != std::string::npos);
  }
}
