// Tests of sgemm, Conv, ConvTranspose, Gemm, MatMul, BatchNormalization and
// InstanceNormalization. Expected values are computed by hand, taken from the examples of the ONNX
// operator documentation, or produced by naive loops written here (independent of the kernels).
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/sgemm.h"
#include "tests/op_test_util.h"

using namespace engine;
using engine::test::check_close;
using engine::test::NodeSpec;
using engine::test::run_node;

namespace {

Tensor f32(const Dims& shape, const std::vector<float>& v) {
  return Tensor::from_vector(shape, v);
}
Tensor iota(const Dims& shape, float start = 0.0f) {
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + float(i);
  return t;
}
std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}
Tensor random_tensor(const Dims& shape, std::mt19937& rng) {
  return f32(shape, random_vec(size_t(checked_numel(shape)), rng));
}
std::vector<float> values(const Tensor& t) {
  return t.to_float_vector();
}
std::vector<float> repeat(const std::vector<float>& v, int times) {
  std::vector<float> r;
  for (int i = 0; i < times; ++i) r.insert(r.end(), v.begin(), v.end());
  return r;
}

using Ints = std::vector<int64_t>;
struct A {  // attribute builder
  Attributes a;
  A& i(const std::string& n, int64_t v) { return a.set(n, v), *this; }
  A& f(const std::string& n, float v) { return a.set(n, v), *this; }
  A& s(const std::string& n, const std::string& v) { return a.set(n, v), *this; }
  A& is(const std::string& n, Ints v) { return a.set(n, std::move(v)), *this; }
};
NodeSpec node(const std::string& op, const A& a = {}, int opset = 17, int outputs = 1) {
  NodeSpec s;
  s.op_type = op;
  s.attrs = a.a;
  s.opset = opset;
  s.num_outputs = outputs;
  return s;
}

const OpRegistry& conv_registry() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_conv_ops(reg);
    register_gemm_ops(reg);
    register_norm_ops(reg);
    return reg;
  }();
  return r;
}
Tensor run1(const NodeSpec& s, const std::vector<Tensor>& in) {
  return run_node(conv_registry(), s, in).at(0);
}

// ------------------------------------------------------------------ naive oracles

void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                const std::vector<float>& a, int64_t lda, const std::vector<float>& b, int64_t ldb,
                float beta, std::vector<float>& c, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(ta ? a[size_t(k * lda + i)] : a[size_t(i * lda + k)]) *
             double(tb ? b[size_t(j * ldb + k)] : b[size_t(k * ldb + j)]);
      float& out = c[size_t(i * ldc + j)];
      out = float(alpha * s + (beta == 0.0f ? 0.0 : double(beta) * out));
    }
}

struct Conv2dCase {
  int64_t N, C, H, W, M, KH, KW, group;
  Ints strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0};  // pads: top, left, bottom, right
  bool bias = true;
};

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

// The textbook 7-loop convolution (plus the group and batch loops).
std::vector<float> naive_conv2d(const Conv2dCase& c, const std::vector<float>& x,
                                const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t Cg = c.C / c.group, Mg = c.M / c.group;
  const int64_t OH = conv_out(c.H, c.KH, c.strides[0], c.dilations[0], c.pads[0], c.pads[2]);
  const int64_t OW = conv_out(c.W, c.KW, c.strides[1], c.dilations[1], c.pads[1], c.pads[3]);
  std::vector<float> y(size_t(c.N * c.M * OH * OW));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = c.bias ? b[size_t(m)] : 0.0;
          const int64_t g = m / Mg;
          for (int64_t cg = 0; cg < Cg; ++cg)
            for (int64_t ky = 0; ky < c.KH; ++ky)
              for (int64_t kx = 0; kx < c.KW; ++kx) {
                const int64_t iy = oy * c.strides[0] - c.pads[0] + ky * c.dilations[0];
                const int64_t ix = ox * c.strides[1] - c.pads[1] + kx * c.dilations[1];
                if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
                const int64_t ci = g * Cg + cg;
                s += double(x[size_t(((n * c.C + ci) * c.H + iy) * c.W + ix)]) *
                     double(w[size_t(((m * Cg + cg) * c.KH + ky) * c.KW + kx)]);
              }
          y[size_t(((n * c.M + m) * OH + oy) * OW + ox)] = float(s);
        }
  return y;
}

void check_conv_vs_naive(const Conv2dCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const Tensor X = random_tensor({c.N, c.C, c.H, c.W}, rng);
  const Tensor W = random_tensor({c.M, c.C / c.group, c.KH, c.KW}, rng);
  const Tensor B = random_tensor({c.M}, rng);
  A a;
  a.is("strides", c.strides).is("dilations", c.dilations).is("pads", c.pads).i("group", c.group);
  std::vector<Tensor> in{X, W};
  if (c.bias) in.push_back(B);
  const Tensor Y = run1(node("Conv", a), in);
  const int64_t OH = conv_out(c.H, c.KH, c.strides[0], c.dilations[0], c.pads[0], c.pads[2]);
  const int64_t OW = conv_out(c.W, c.KW, c.strides[1], c.dilations[1], c.pads[1], c.pads[3]);
  const float tol = 1e-5f * float(c.C / c.group * c.KH * c.KW + 1);
  check_close(Y, naive_conv2d(c, values(X), values(W), values(B)), {c.N, c.M, OH, OW}, tol, 1e-4f);
}

}  // namespace

// ================================================================== sgemm

TEST_CASE("sgemm matches a naive triple loop on odd shapes, transposes, alpha/beta") {
  std::mt19937 rng(7);
  const int64_t sizes[] = {1, 3, 7, 17, 33};
  for (bool generic : {false, true}) {
    sgemm_force_generic_kernel(generic);
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : {int64_t(1), int64_t(7), int64_t(33), int64_t(70)})
          for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            // Leading dims larger than needed, to catch stride mistakes.
            const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1;
            const std::vector<float> a = random_vec(size_t((ta ? K : M) * lda), rng);
            const std::vector<float> b = random_vec(size_t((tb ? N : K) * ldb), rng);
            std::vector<float> c = random_vec(size_t(M * ldc), rng), want = c;
            const float alpha = (t == 3) ? -0.5f : 1.0f, beta = (M + N) % 3 == 0 ? 0.0f : 0.75f;
            if (beta == 0.0f)  // C must not be read when beta == 0
              for (int64_t i = 0; i < M; ++i) c[size_t(i * ldc)] = std::nanf("");
            sgemm(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, 2);
            naive_gemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, want, ldc);
            INFO("M=", M, " N=", N, " K=", K, " transA=", ta, " transB=", tb, " generic=", generic);
            for (size_t i = 0; i < c.size(); ++i)
              REQUIRE(std::abs(c[i] - want[i]) <= 1e-5f * float(K + 1));
          }
  }
  sgemm_force_generic_kernel(false);
}

TEST_CASE("sgemm on sizes spanning several cache blocks and threads") {
  std::mt19937 rng(11);
  struct S {
    int64_t M, N, K;
  };
  for (S s : {S{257, 33, 300}, S{100, 600, 257}, S{7, 1030, 17}, S{300, 5, 520}}) {
    for (int threads : {1, 2}) {
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t lda = ta ? s.M : s.K, ldb = tb ? s.K : s.N;
        const std::vector<float> a = random_vec(size_t(s.M * s.K), rng);
        const std::vector<float> b = random_vec(size_t(s.K * s.N), rng);
        std::vector<float> c = random_vec(size_t(s.M * s.N), rng), want = c;
        sgemm(ta, tb, s.M, s.N, s.K, 1.5f, a.data(), lda, b.data(), ldb, 1.0f, c.data(), s.N,
              threads);
        naive_gemm(ta, tb, s.M, s.N, s.K, 1.5f, a, lda, b, ldb, 1.0f, want, s.N);
        INFO("M=", s.M, " N=", s.N, " K=", s.K, " t=", t, " threads=", threads);
        for (size_t i = 0; i < c.size(); ++i) REQUIRE(std::abs(c[i] - want[i]) <= 2e-4f);
      }
    }
  }
}

TEST_CASE("sgemm edge cases: K = 0 scales C, empty M/N do nothing") {
  std::vector<float> c{1, 2, 3, 4};
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
  sgemm(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, nullptr, 2);
  CHECK_THROWS_AS(sgemm(false, false, 2, 2, 2, 1.0f, c.data(), 1, c.data(), 2, 0.0f, c.data(), 2),
                  engine::Error);
}

// ================================================================== Conv: hand-computed cases

// ONNX documentation examples: X = 0..24 as 5x5, W = 3x3 of ones.
TEST_CASE("Conv basic with and without padding (ONNX examples)") {
  const Tensor X = iota({1, 1, 5, 5});
  const Tensor W = f32({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  check_close(run1(node("Conv", A().is("kernel_shape", {3, 3}).is("pads", {1, 1, 1, 1})), {X, W}),
              {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
               117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84},
              {1, 1, 5, 5});
  check_close(run1(node("Conv", A().is("kernel_shape", {3, 3})), {X, W}),
              {54, 63, 72, 99, 108, 117, 144, 153, 162}, {1, 1, 3, 3});
  // kernel_shape is optional (taken from W); bias adds per output channel.
  check_close(run1(node("Conv"), {X, W, f32({1}, {0.5f})}),
              {54.5, 63.5, 72.5, 99.5, 108.5, 117.5, 144.5, 153.5, 162.5}, {1, 1, 3, 3});
}

// ONNX documentation examples: X = 0..34 as 7x5, W = 3x3 of ones.
TEST_CASE("Conv with strides 2, padding and asymmetric padding (ONNX examples)") {
  const Tensor X = iota({1, 1, 7, 5});
  const Tensor W = f32({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  check_close(run1(node("Conv", A().is("strides", {2, 2}).is("pads", {1, 1, 1, 1})), {X, W}),
              {12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124}, {1, 1, 4, 3});
  check_close(run1(node("Conv", A().is("strides", {2, 2})), {X, W}), {54, 72, 144, 162, 234, 252},
              {1, 1, 3, 2});
  check_close(run1(node("Conv", A().is("strides", {2, 2}).is("pads", {1, 0, 1, 0})), {X, W}),
              {21, 33, 99, 117, 189, 207, 171, 183}, {1, 1, 4, 2});
}

TEST_CASE("Conv auto_pad SAME_LOWER / SAME_UPPER / VALID") {
  const Tensor X = iota({1, 1, 5, 5});
  // ONNX example: stride 2, 3x3 ones, SAME_LOWER -> 3x3 output.
  const Tensor W3 = f32({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  check_close(run1(node("Conv", A().s("auto_pad", "SAME_LOWER").is("strides", {2, 2})), {X, W3}),
              {12, 27, 24, 63, 108, 81, 72, 117, 84}, {1, 1, 3, 3});
  // 2x2 kernel on 5x5, stride 1: total padding 1 (odd). SAME_UPPER puts it at the end:
  // y[i][j] = x[i][j] + x[i][j+1] + x[i+1][j] + x[i+1][j+1] with x[r][c] = 5r + c, 0 outside.
  const Tensor W2 = f32({1, 1, 2, 2}, {1, 1, 1, 1});
  check_close(run1(node("Conv", A().s("auto_pad", "SAME_UPPER")), {X, W2}),
              {12, 16, 20, 24, 13, 32, 36, 40, 44, 23, 52, 56, 60,
               64, 33, 72, 76, 80, 84, 43, 41, 43, 45, 47, 24},
              {1, 1, 5, 5});
  // SAME_LOWER puts it at the start: y[i][j] = sum of x[i-1..i][j-1..j].
  check_close(run1(node("Conv", A().s("auto_pad", "SAME_LOWER")), {X, W2}),
              {0,  1,  3,  5,  7,  5,  12, 16, 20, 24, 15, 32, 36,
               40, 44, 25, 52, 56, 60, 64, 35, 72, 76, 80, 84},
              {1, 1, 5, 5});
  // VALID ignores pads.
  check_close(run1(node("Conv", A().s("auto_pad", "VALID").is("pads", {1, 1, 1, 1})), {X, W3}),
              {54, 63, 72, 99, 108, 117, 144, 153, 162}, {1, 1, 3, 3});
}

TEST_CASE("Conv with dilation 2") {
  const Tensor X = iota({1, 1, 5, 5});
  const Tensor W = f32({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  // Effective kernel 5x5: samples rows and columns {0, 2, 4}: 3 * 5 * 6 + 3 * 6 = 108.
  check_close(run1(node("Conv", A().is("dilations", {2, 2})), {X, W}), {108}, {1, 1, 1, 1});
  // With padding 1: output 3x3, taps at offsets -1, +1, +3 around each position.
  check_close(run1(node("Conv", A().is("dilations", {2, 2}).is("pads", {1, 1, 1, 1})), {X, W}),
              {48, 72, 48, 72, 108, 72, 48, 72, 48}, {1, 1, 3, 3});
}

TEST_CASE("Conv with group = 2 and bias") {
  // 4 input channels of width 3, 4 output channels (2 per group), kernel 1x2.
  const Tensor X = f32({1, 4, 1, 3}, {1, 2, 3, 0, 1, 0, 2, 2, 2, 1, 0, -1});
  const Tensor W = f32({4, 2, 1, 2}, {1, 0, 0, 1,   // m0: c0 [1 0], c1 [0 1]
                                      1, 1, 0, 0,   // m1: c0 [1 1]
                                      1, 0, 2, 0,   // m2: c2 [1 0], c3 [2 0]
                                      0, 0, 1, -1}  // m3: c3 [1 -1]
  );
  const Tensor B = f32({4}, {0.5f, 0, -1, 0});
  check_close(run1(node("Conv", A().i("group", 2)), {X, W, B}), {2.5, 2.5, 3, 5, 3, 1, 1, 1},
              {1, 4, 1, 2});
}

TEST_CASE("Conv depthwise over 3 channels") {
  const Tensor X = f32({1, 3, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8,  //
                                      1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                      9, 8, 7, 6, 5, 4, 3, 2, 1});
  const Tensor W = f32({3, 1, 2, 2}, {1, 1, 1, 1, 1, 2, 3, 4, 1, 0, 0, -1});
  check_close(run1(node("Conv", A().i("group", 3)), {X, W}),
              {8, 12, 20, 24, 10, 10, 10, 10, 4, 4, 4, 4}, {1, 3, 2, 2});
  // With padding 1 on the ones kernel, channel 0: corner sums of the 3x3 input.
  check_close(
      run1(node("Conv", A().i("group", 3).is("pads", {1, 1, 0, 0})), {X, W, f32({3}, {0, 1, 0})}),
      {0,  1,  3,  3,  8,  12, 9,  20, 24,  // ch0: sums of x[i-1..i][j-1..j]
       5,  8,  8,  7,  11, 11, 7,  11, 11,  // ch1: in-range taps of [1 2; 3 4], + bias 1
       -9, -8, -7, -6, 4,  4,  -3, 4,  4},  // ch2: x[i-1][j-1] - x[i][j]
      {1, 3, 3, 3});
}

TEST_CASE("Conv 1x1 (pointwise), 1-D and 3-D") {
  const Tensor X = f32({1, 2, 2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
  const Tensor W = f32({3, 2, 1, 1}, {1, 0, 0, 1, 1, 1});
  check_close(run1(node("Conv"), {X, W}), {1, 2, 3, 4, 10, 20, 30, 40, 11, 22, 33, 44},
              {1, 3, 2, 2});
  // 1-D: y[j] = x[j-1] - x[j+1].
  check_close(run1(node("Conv", A().is("pads", {1, 1})),
                   {f32({1, 1, 5}, {1, 2, 3, 4, 5}), f32({1, 1, 3}, {1, 0, -1})}),
              {-2, -2, -2, -2, 4}, {1, 1, 5});
  // 3-D: a 2x2x2 box of ones over 1..8.
  check_close(run1(node("Conv"), {iota({1, 1, 2, 2, 2}, 1), f32({1, 1, 2, 2, 2}, repeat({1}, 8))}),
              {36}, {1, 1, 1, 1, 1});
  // 3-D stride 2 with padding 1 on a 3x3x3 cube of ones: counts of in-range taps.
  check_close(run1(node("Conv", A().is("strides", {2, 2, 2}).is("pads", {1, 1, 1, 1, 1, 1})),
                   {f32({1, 1, 3, 3, 3}, repeat({1}, 27)), f32({1, 1, 2, 2, 2}, repeat({1}, 8))}),
              {1, 2, 2, 4, 2, 4, 4, 8}, {1, 1, 2, 2, 2});
}

// ================================================================== Conv vs the naive loops

TEST_CASE("Conv matches a naive convolution on random odd shapes") {
  std::vector<Conv2dCase> cases;
  // N=2, C=3, 7x5 input, 5 output channels.
  cases.push_back({2, 3, 7, 5, 5, 3, 3, 1});
  cases.push_back({2, 3, 7, 5, 5, 3, 2, 1, {2, 1}, {1, 2}, {1, 0, 2, 1}});
  cases.push_back({2, 3, 7, 5, 5, 2, 3, 1, {1, 2}, {2, 1}, {0, 1, 1, 0}, false});
  cases.push_back({2, 3, 7, 5, 5, 1, 1, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}});  // 1x1 strided
  cases.push_back({2, 3, 7, 5, 5, 1, 1, 1, {1, 1}, {1, 1}, {1, 1, 0, 0}});  // 1x1 padded
  cases.push_back({2, 3, 7, 5, 5, 1, 1, 1});                                // 1x1 pointwise
  // Depthwise (multiplier 1 and 2), with strides, dilations and padding.
  cases.push_back({2, 3, 7, 5, 3, 3, 3, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}});
  cases.push_back({2, 3, 7, 5, 3, 3, 3, 3, {2, 2}, {1, 1}, {1, 1, 1, 1}});
  cases.push_back({2, 3, 7, 5, 6, 3, 2, 3, {2, 1}, {2, 2}, {2, 0, 1, 3}});
  // Grouped: 6 channels in 2 and 3 groups.
  cases.push_back({2, 6, 7, 5, 4, 3, 3, 2, {1, 2}, {1, 1}, {1, 1, 1, 1}});
  cases.push_back({1, 6, 9, 7, 9, 3, 3, 3, {2, 2}, {2, 1}, {2, 1, 0, 1}});
  // Kernel as large as the padded input, and a single-pixel image.
  cases.push_back({1, 2, 3, 3, 2, 5, 5, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}});
  cases.push_back({3, 4, 1, 1, 5, 1, 1, 1});
  // Per-image path (large outputs): im2col in several row chunks, and the pointwise GEMM.
  cases.push_back({2, 64, 64, 64, 8, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}});
  cases.push_back({2, 4, 400, 330, 3, 1, 1, 1});
  uint32_t seed = 100;
  for (const Conv2dCase& c : cases) {
    INFO("N=", c.N, " C=", c.C, " H=", c.H, " W=", c.W, " M=", c.M, " k=", c.KH, "x", c.KW,
         " group=", c.group, " strides=", dims_str(c.strides), " dilations=", dims_str(c.dilations),
         " pads=", dims_str(c.pads));
    check_conv_vs_naive(c, seed++);
  }
}

// ================================================================== Conv errors

TEST_CASE("Conv rejects inconsistent shapes and attributes with clear messages") {
  const Tensor X = iota({1, 3, 5, 5});
  CHECK_THROWS_WITH_AS(run1(node("Conv"), {X, iota({4, 2, 3, 3})}),
                       doctest::Contains("input X has 3 channels but W.shape[1] * group = 2 * 1"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv", A().i("group", 3)), {X, iota({4, 1, 3, 3})}),
                       doctest::Contains("not divisible by group = 3"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run1(node("Conv", A().i("group", 2)), {iota({1, 4, 5, 5}), iota({4, 1, 3, 3})}),
      doctest::Contains("expected W.shape[1] == C / group = 2"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv", A().is("kernel_shape", {2, 2})), {X, iota({4, 3, 3, 3})}),
                       doctest::Contains("kernel_shape"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv", A().is("pads", {1, 1})), {X, iota({4, 3, 3, 3})}),
                       doctest::Contains("attribute pads=[1,1] has 2 values, expected 4"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv"), {X, iota({4, 3, 3, 3}), iota({3})}),
                       doctest::Contains("bias B must have shape [4]"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv"), {X, iota({4, 3, 7, 7})}),
                       doctest::Contains("smaller than the dilated kernel size 7"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv", A().s("auto_pad", "SAME")), {X, iota({4, 3, 3, 3})}),
                       doctest::Contains("auto_pad='SAME'"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv"), {iota({3, 5}), iota({4, 3})}),
                       doctest::Contains("must have rank 3, 4 or 5"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Conv", A().is("strides", {0, 1})), {X, iota({4, 3, 3, 3})}),
                       doctest::Contains("strides"), engine::Error);
  CHECK_THROWS_AS(run1(node("Conv"), {X, iota({4, 3, 3})}), engine::Error);
}

// ================================================================== ConvTranspose

TEST_CASE("ConvTranspose ONNX examples: default, pads, output_shape, auto_pad, dilations") {
  const Tensor X = iota({1, 1, 3, 3});
  const Tensor W = f32({1, 2, 3, 3}, repeat({1}, 18));
  const std::vector<float> basic{0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                 27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
  check_close(run1(node("ConvTranspose"), {X, W}), repeat(basic, 2), {1, 2, 5, 5});

  const std::vector<float> pads{1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
  check_close(
      run1(node("ConvTranspose", A().is("strides", {3, 2}).is("pads", {1, 2, 1, 2})), {X, W}),
      repeat(pads, 2), {1, 2, 7, 3});

  // Rows: input row r covers output rows 3r..3r+2; columns: input col c covers 2c..2c+2.
  const std::vector<float> r0{0, 0, 1, 1, 3, 2, 2, 0}, r1{3, 3, 7, 4, 9, 5, 5, 0},
      r2{6, 6, 13, 7, 15, 8, 8, 0}, z(8, 0.0f);
  std::vector<float> oshape;
  for (const auto* r : {&r0, &r0, &r0, &r1, &r1, &r1, &r2, &r2, &r2, &z})
    oshape.insert(oshape.end(), r->begin(), r->end());
  check_close(
      run1(node("ConvTranspose", A().is("strides", {3, 2}).is("output_shape", {10, 8})), {X, W}),
      repeat(oshape, 2), {1, 2, 10, 8});
  // Same via output_padding (and an explicit kernel_shape).
  check_close(
      run1(node("ConvTranspose",
                A().is("strides", {3, 2}).is("output_padding", {1, 1}).is("kernel_shape", {3, 3})),
           {X, W}),
      repeat(oshape, 2), {1, 2, 10, 8});

  // SAME_UPPER, stride 2: 6x6 output, the single padding position goes at the end.
  const std::vector<float> same{0, 0, 1, 1, 3, 2, 0, 0, 1,  1,  3,  2,  3, 3, 8,  5, 12, 7,
                                3, 3, 7, 4, 9, 5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
  check_close(
      run1(node("ConvTranspose", A().s("auto_pad", "SAME_UPPER").is("strides", {2, 2})), {X, W}),
      repeat(same, 2), {1, 2, 6, 6});

  // Dilations 2: y[p][q] = 7 x[p][q] + 2 x[p][q-2] + x[p-2][q] + 9 x[p-2][q-2].
  check_close(
      run1(node("ConvTranspose", A().is("dilations", {2, 2})),
           {f32({1, 1, 3, 3}, {3, 8, 1, 9, 5, 7, 3, 2, 6}), f32({1, 1, 2, 2}, {7, 2, 1, 9})}),
      {21, 56, 13, 16, 2,  63, 35, 67, 10, 14, 24, 22, 76,
       76, 21, 9,  5,  88, 45, 63, 3,  2,  33, 18, 54},
      {1, 1, 5, 5});
}

TEST_CASE("ConvTranspose 1-D with groups and bias") {
  // group 0: c0 = [1 2] with w [1 1]; group 1: c1 = [3 4] with w [1 -1].
  check_close(run1(node("ConvTranspose", A().i("group", 2)),
                   {f32({1, 2, 2}, {1, 2, 3, 4}), f32({2, 1, 2}, {1, 1, 1, -1}), f32({2}, {1, 0})}),
              {2, 4, 3, 3, 1, -4}, {1, 2, 3});
}

namespace {
// Scatter form of the transposed convolution, 2-D.
std::vector<float> naive_conv_transpose2d(const Conv2dCase& c, const Ints& out_pad,
                                          const std::vector<float>& x, const std::vector<float>& w,
                                          const std::vector<float>& b, int64_t& OH, int64_t& OW) {
  const int64_t Cg = c.C / c.group, Mg = c.M / c.group;
  OH = c.strides[0] * (c.H - 1) + out_pad[0] + (c.KH - 1) * c.dilations[0] + 1 - c.pads[0] -
       c.pads[2];
  OW = c.strides[1] * (c.W - 1) + out_pad[1] + (c.KW - 1) * c.dilations[1] + 1 - c.pads[1] -
       c.pads[3];
  std::vector<double> y(size_t(c.N * c.M * OH * OW), 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t ci = 0; ci < c.C; ++ci)
      for (int64_t iy = 0; iy < c.H; ++iy)
        for (int64_t ix = 0; ix < c.W; ++ix)
          for (int64_t m = 0; m < Mg; ++m)
            for (int64_t ky = 0; ky < c.KH; ++ky)
              for (int64_t kx = 0; kx < c.KW; ++kx) {
                const int64_t oy = iy * c.strides[0] - c.pads[0] + ky * c.dilations[0];
                const int64_t ox = ix * c.strides[1] - c.pads[1] + kx * c.dilations[1];
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                const int64_t oc = (ci / Cg) * Mg + m;
                y[size_t(((n * c.M + oc) * OH + oy) * OW + ox)] +=
                    double(x[size_t(((n * c.C + ci) * c.H + iy) * c.W + ix)]) *
                    double(w[size_t(((ci * Mg + m) * c.KH + ky) * c.KW + kx)]);
              }
  std::vector<float> r(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    r[i] = float(y[i] + (c.bias ? b[(i / size_t(OH * OW)) % size_t(c.M)] : 0.0f));
  return r;
}
}  // namespace

TEST_CASE("ConvTranspose matches a naive scatter on random shapes") {
  struct Case {
    Conv2dCase c;
    Ints out_pad;
  };
  std::vector<Case> cases;
  cases.push_back({{2, 3, 4, 5, 5, 3, 3, 1}, {0, 0}});
  cases.push_back({{2, 3, 4, 5, 5, 3, 2, 1, {2, 3}, {1, 1}, {1, 0, 0, 2}}, {1, 2}});
  cases.push_back({{1, 4, 3, 5, 6, 2, 3, 2, {2, 1}, {2, 2}, {0, 1, 1, 0}, false}, {1, 0}});
  cases.push_back({{2, 3, 5, 3, 3, 3, 3, 3, {2, 2}, {1, 1}, {1, 1, 1, 1}}, {0, 1}});
  std::mt19937 rng(5);
  for (const Case& k : cases) {
    const Conv2dCase& c = k.c;
    const Tensor X = random_tensor({c.N, c.C, c.H, c.W}, rng);
    const Tensor W = random_tensor({c.C, c.M / c.group, c.KH, c.KW}, rng);
    const Tensor B = random_tensor({c.M}, rng);
    A a;
    a.is("strides", c.strides).is("dilations", c.dilations).is("pads", c.pads);
    a.i("group", c.group).is("output_padding", k.out_pad);
    std::vector<Tensor> in{X, W};
    if (c.bias) in.push_back(B);
    int64_t OH = 0, OW = 0;
    const std::vector<float> want =
        naive_conv_transpose2d(c, k.out_pad, values(X), values(W), values(B), OH, OW);
    INFO("C=", c.C, " M=", c.M, " group=", c.group, " strides=", dims_str(c.strides));
    check_close(run1(node("ConvTranspose", a), in), want, {c.N, c.M, OH, OW}, 1e-4f, 1e-4f);
  }
}

TEST_CASE("ConvTranspose rejects bad shapes") {
  CHECK_THROWS_WITH_AS(run1(node("ConvTranspose"), {iota({1, 3, 4, 4}), iota({2, 2, 3, 3})}),
                       doctest::Contains("expected W.shape[0] == C = 3"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("ConvTranspose", A().is("pads", {3, 3, 3, 3})),
                            {iota({1, 1, 2, 2}), iota({1, 1, 2, 2})}),
                       doctest::Contains("would have size"), engine::Error);
  CHECK_THROWS_AS(run1(node("ConvTranspose", A().is("output_shape", {4, 4, 4})),
                       {iota({1, 1, 2, 2}), iota({1, 1, 2, 2})}),
                  engine::Error);
}

// ================================================================== Gemm

TEST_CASE("Gemm with C broadcast from a row, a column, a scalar and a full matrix") {
  const Tensor Am = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor Bm = f32({3, 2}, {1, 0, 0, 1, 1, 1});  // A B = [[4 5] [10 11]]
  check_close(run1(node("Gemm"), {Am, Bm, f32({2}, {1, -1})}), {5, 4, 11, 10}, {2, 2});
  check_close(run1(node("Gemm"), {Am, Bm, f32({2, 1}, {1, -1})}), {5, 6, 9, 10}, {2, 2});
  check_close(run1(node("Gemm"), {Am, Bm, Tensor::scalar(2.0f)}), {6, 7, 12, 13}, {2, 2});
  check_close(run1(node("Gemm"), {Am, Bm, f32({1}, {2})}), {6, 7, 12, 13}, {2, 2});
  check_close(run1(node("Gemm"), {Am, Bm, f32({1, 2}, {1, -1})}), {5, 4, 11, 10}, {2, 2});
  check_close(
      run1(node("Gemm", A().f("alpha", 2).f("beta", -1)), {Am, Bm, f32({2, 2}, {1, 2, 3, 4})}),
      {7, 8, 17, 18}, {2, 2});
  // No C (opset 11+), and beta = 0.
  check_close(run1(node("Gemm"), {Am, Bm}), {4, 5, 10, 11}, {2, 2});
  check_close(run1(node("Gemm", A().f("beta", 0)), {Am, Bm, f32({2}, {7, 7})}), {4, 5, 10, 11},
              {2, 2});
}

TEST_CASE("Gemm transA / transB on odd shapes match a naive loop") {
  std::mt19937 rng(3);
  const int64_t M = 17, K = 33, N = 7;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const Tensor Am = random_tensor(ta ? Dims{K, M} : Dims{M, K}, rng);
    const Tensor Bm = random_tensor(tb ? Dims{N, K} : Dims{K, N}, rng);
    const Tensor C = random_tensor({N}, rng);
    std::vector<float> want(size_t(M * N));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) want[size_t(i * N + j)] = 0.5f * values(C)[size_t(j)];
    naive_gemm(ta, tb, M, N, K, 0.25f, values(Am), ta ? M : K, values(Bm), tb ? K : N, 1.0f, want,
               N);
    const Tensor Y =
        run1(node("Gemm", A().i("transA", ta).i("transB", tb).f("alpha", 0.25f).f("beta", 0.5f)),
             {Am, Bm, C});
    check_close(Y, want, {M, N}, 1e-4f, 1e-4f);
  }
}

TEST_CASE("Gemm on int64 and errors") {
  const Tensor Am = Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4});
  const Tensor Bm = Tensor::from_vector<int64_t>({2, 2}, {5, 6, 7, 8});
  const Tensor Y = run1(node("Gemm"), {Am, Bm, Tensor::from_vector<int64_t>({2}, {1, 1})});
  CHECK(Y.dtype() == DType::I64);
  CHECK(Y.to_int_vector() == std::vector<int64_t>{20, 23, 44, 51});
  CHECK_THROWS_WITH_AS(run1(node("Gemm"), {iota({2, 3}), iota({2, 3})}),
                       doctest::Contains("inner dimensions do not match"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Gemm"), {iota({2, 3}), iota({3, 2}), iota({3})}),
                       doctest::Contains("cannot be broadcast"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("Gemm"), {iota({2, 3, 1}), iota({3, 2})}),
                       doctest::Contains("A must be 2-D"), engine::Error);
}

// ================================================================== MatMul

TEST_CASE("MatMul 2-D and 1-D promotion") {
  const Tensor Am = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor Bm = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  check_close(run1(node("MatMul"), {Am, Bm}), {4, 5, 10, 11}, {2, 2});
  check_close(run1(node("MatMul"), {f32({3}, {1, 1, 1}), Bm}), {2, 2}, {2});
  check_close(run1(node("MatMul"), {Am, f32({3}, {1, 0, -1})}), {-2, -2}, {2});
  check_close(run1(node("MatMul"), {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})}), {32}, {});
  // 1-D A against a batch of matrices.
  check_close(run1(node("MatMul"), {f32({2}, {1, 2}), iota({2, 2, 3})}), {6, 9, 12, 24, 27, 30},
              {2, 3});
}

TEST_CASE("MatMul batch broadcasting matches a naive loop") {
  std::mt19937 rng(9);
  struct Case {
    Dims a, b, out;
  };
  for (const Case& c :
       {Case{{2, 1, 3, 4}, {3, 4, 5}, {2, 3, 3, 5}}, Case{{2, 3, 4}, {4, 5}, {2, 3, 5}},
        Case{{3, 4}, {2, 4, 5}, {2, 3, 5}}, Case{{1, 3, 4}, {2, 4, 5}, {2, 3, 5}},
        Case{{2, 1, 7, 33}, {1, 3, 33, 17}, {2, 3, 7, 17}}}) {
    const Tensor Am = random_tensor(c.a, rng), Bm = random_tensor(c.b, rng);
    const int64_t M = c.a[c.a.size() - 2], K = c.a.back(), N = c.b.back();
    // Index the broadcast batch by hand: out batch dims are (d0, d1) or (d0,).
    const size_t rb = c.out.size() - 2;
    const std::vector<float> a = values(Am), b = values(Bm);
    std::vector<float> want;
    const int64_t nb = checked_numel(Dims(c.out.begin(), c.out.begin() + long(rb)));
    for (int64_t bi = 0; bi < nb; ++bi) {
      // Batch coordinates of the output, mapped onto A and B (size-1 dims stay at 0).
      Dims idx(rb);
      for (size_t i = rb, r = size_t(bi); i-- > 0;)
        idx[i] = int64_t(r % size_t(c.out[i])), r /= size_t(c.out[i]);
      auto offset = [&](const Dims& s) {
        const size_t sr = s.size() - 2;
        int64_t off = 0;
        for (size_t i = 0; i < sr; ++i) {
          const int64_t d = s[i], id = d == 1 ? 0 : idx[i + rb - sr];
          off = off * d + id;
        }
        return off * s[sr] * s[sr + 1];
      };
      const int64_t ao = offset(c.a), bo = offset(c.b);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k)
            s += double(a[size_t(ao + i * K + k)]) * double(b[size_t(bo + k * N + j)]);
          want.push_back(float(s));
        }
    }
    INFO("A ", dims_str(c.a), " B ", dims_str(c.b));
    check_close(run1(node("MatMul"), {Am, Bm}), want, c.out, 1e-5f, 1e-4f);
  }
}

TEST_CASE("MatMul int32 and errors") {
  const Tensor Y = run1(node("MatMul"), {Tensor::from_vector<int32_t>({1, 2}, {2, 3}),
                                         Tensor::from_vector<int32_t>({2, 1}, {4, 5})});
  CHECK(Y.dtype() == DType::I32);
  CHECK(Y.to_int_vector() == std::vector<int64_t>{23});
  CHECK_THROWS_WITH_AS(run1(node("MatMul"), {iota({2, 3}), iota({4, 2})}),
                       doctest::Contains("inner dimensions do not match"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("MatMul"), {iota({2, 2, 3}), iota({3, 3, 2})}),
                       doctest::Contains("cannot be broadcast together"), engine::Error);
}

// ================================================================== BatchNormalization

TEST_CASE("BatchNormalization inference values") {
  const Tensor X = f32({1, 2, 1, 3}, {-1, 0, 1, 2, 3, 4});
  const Tensor s = f32({2}, {1, 1.5f}), b = f32({2}, {0, 1}), m = f32({2}, {0, 3});
  // Hand computed with epsilon 0: channel 1 is (x - 3) / 2 * 1.5 + 1.
  check_close(run1(node("BatchNormalization", A().f("epsilon", 0)), {X, s, b, m, f32({2}, {1, 4})}),
              {-1, 0, 1, 0.25f, 1, 1.75f}, {1, 2, 1, 3});
  // ONNX documentation example (default epsilon 1e-5), also at opset 7 with spatial=1 and 9.
  const std::vector<float> want{-0.999995f, 0, 0.999995f, -0.22474074f, 1, 2.2247407f};
  for (int opset : {7, 9, 15}) {
    A a;
    if (opset == 7) a.i("spatial", 1);
    check_close(run1(node("BatchNormalization", a, opset), {X, s, b, m, f32({2}, {1, 1.5f})}), want,
                {1, 2, 1, 3});
  }
  // Rank 2 input (N, C).
  check_close(run1(node("BatchNormalization", A().f("epsilon", 0)),
                   {f32({2, 2}, {1, 5, 3, 7}), s, b, m, f32({2}, {1, 4})}),
              {1, 2.5f, 3, 4}, {2, 2});
}

TEST_CASE("BatchNormalization rejects training mode and bad parameters") {
  const Tensor X = iota({1, 2, 2, 2});
  const Tensor p = f32({2}, {1, 1});
  CHECK_THROWS_WITH_AS(run1(node("BatchNormalization", A().i("spatial", 0), 7), {X, p, p, p, p}),
                       doctest::Contains("spatial=0 is not supported"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run1(node("BatchNormalization", A().i("training_mode", 1), 15), {X, p, p, p, p}),
      doctest::Contains("training_mode=1 is not supported"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(conv_registry(), node("BatchNormalization", {}, 9, 5), {X, p, p, p, p}),
      doctest::Contains("declares 5 outputs"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("BatchNormalization"), {X, f32({3}, {1, 1, 1}), p, p, p}),
                       doctest::Contains("input scale must have shape [2]"), engine::Error);
  CHECK_THROWS_WITH_AS(run1(node("BatchNormalization"), {iota({4}), p, p, p, p}),
                       doctest::Contains("rank >= 2"), engine::Error);
}

TEST_CASE("InstanceNormalization") {
  // Channel 0: [1 2 3], mean 2, variance 2/3. Channel 1: [0 0 6], mean 2, variance 8.
  const Tensor X = f32({1, 2, 1, 3}, {1, 2, 3, 0, 0, 6});
  const float r = 1.2247449f;   // 1 / sqrt(2/3)
  const float q = 0.70710678f;  // 2 / sqrt(8)
  check_close(run1(node("InstanceNormalization", A().f("epsilon", 0)),
                   {X, f32({2}, {1, 2}), f32({2}, {0, 1})}),
              {-r, 0, r, 1 - 2 * q, 1 - 2 * q, 1 + 4 * q}, {1, 2, 1, 3}, 1e-5f, 1e-5f);
  CHECK_THROWS_AS(run1(node("InstanceNormalization"), {X, f32({3}, {1, 1, 1}), f32({2}, {0, 0})}),
                  engine::Error);
}
