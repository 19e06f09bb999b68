// backends/x86/f32_gemm: the float32 register-tile GEMM (bias, residual Sum and clamp in the
// epilogue) against a double-precision loop over odd sizes, thread counts, Sum in place or not,
// NaN and infinity; and NhwcConv's 1x1 convs with a residual, which run on it, against the
// reference kernels (the same graph with backend "reference").
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "backends/x86/f32_gemm.h"
#include "engine/engine.h"
#include "model_builder.h"
#include "op_test_util.h"

using namespace engine;
using engine::test::max_rel_diff;
using engine::test::ModelBuilder;

namespace {

std::vector<float> uniform(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

struct Case {
  int64_t rows, K, N;
  int threads;
  int sum;  // 0 none, 1 separate buffer, 2 in place (Sum is C)
  float lo, hi;
};

constexpr float kInf = std::numeric_limits<float>::infinity();

void check_gemm(const Case& c, std::mt19937& rng) {
  CAPTURE(c.rows);
  CAPTURE(c.K);
  CAPTURE(c.N);
  CAPTURE(c.threads);
  CAPTURE(c.sum);
  CAPTURE(c.lo);
  // A and C with row strides wider than K and N, so a kernel ignoring lda / ldc fails.
  const int64_t lda = c.K + 3, ldc = c.N + 5;
  const std::vector<float> a = uniform(c.rows * lda, rng), w = uniform(c.N * c.K, rng),
                           bias = uniform(c.N, rng), s = uniform(c.rows * ldc, rng);
  const Tensor wp = x86::f32_gemm_pack(w.data(), c.N, c.K),
               bp = x86::f32_gemm_bias(bias.data(), c.N);
  std::vector<float> out(size_t(c.rows * ldc), 1234.5f), sep = s;
  x86::F32Gemm g;
  g.a = a.data(), g.lda = lda, g.K = c.K;
  g.w = wp.data<float>(), g.bias = bp.data<float>(), g.N = c.N;
  g.lo = c.lo, g.hi = c.hi;
  if (c.sum == 2) out = s;
  g.c = out.data(), g.ldc = ldc;
  if (c.sum) g.sum = c.sum == 2 ? out.data() : sep.data(), g.lds = ldc;
  if (c.threads == 0)
    x86::f32_gemm(g, c.rows);
  else
    x86::f32_gemm_parallel(g, c.rows, c.threads);
  int bad = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t n = 0; n < ldc; ++n) {
      const float got = out[size_t(r * ldc + n)];
      if (n >= c.N) {  // past N: untouched
        const float was = c.sum == 2 ? s[size_t(r * ldc + n)] : 1234.5f;
        bad += got != was;
        continue;
      }
      double y = bias[size_t(n)], mag = std::abs(y);
      for (int64_t k = 0; k < c.K; ++k) {
        y += double(a[size_t(r * lda + k)]) * w[size_t(n * c.K + k)];
        mag += std::abs(double(a[size_t(r * lda + k)]) * w[size_t(n * c.K + k)]);
      }
      if (c.sum) y += s[size_t(r * ldc + n)], mag += std::abs(s[size_t(r * ldc + n)]);
      y = std::min<double>(c.hi, std::max<double>(c.lo, y));
      bad += !(std::abs(got - y) <= 1e-6 * (1 + mag));
    }
  }
  CHECK(bad == 0);
  CHECK(sep == s);  // a separate Sum is only read
}

}  // namespace

TEST_CASE("f32_gemm: bias, Sum and clamp on register tiles match a double-precision loop") {
  if (!x86::f32_kernels_available()) {
    MESSAGE("no AVX-512F: the own float kernels do not run on this CPU");
    return;
  }
  std::mt19937 rng(11);
  // N: tails of every vector count (1 .. 4 vectors per panel), panels of 3 vectors (48, 96, 144)
  // and of 4 with a narrower last one (160 = 4 + 4 + 2 vectors); rows: below, at and past one
  // tile and one 48-row chunk, and uneven thread shares (49 rows on 2 threads).
  for (int64_t N : {1, 5, 16, 33, 48, 70, 96, 144, 160, 256})
    for (int64_t rows : {1, 5, 7, 13, 48, 49, 97, 300})
      for (int threads : {0, 1, 2, 3}) {
        const int64_t K = (N * 7 + rows) % 67 + 1;
        const int sum = int((N + rows + threads) % 3);
        const float lo = (rows + threads) % 2 ? 0.0f : -kInf;
        const float hi = N % 3 == 0 ? 0.75f : kInf;
        check_gemm({rows, K, N, threads, sum, lo, hi}, rng);
      }
  // No rows at all; deep K (resnet50's 7x7 blocks: 512); a long, wide case on several threads.
  check_gemm({0, 5, 33, 2, 1, -kInf, kInf}, rng);
  check_gemm({49, 512, 2048, 2, 2, 0.0f, kInf}, rng);
  check_gemm({1000, 130, 272, 3, 1, -kInf, kInf}, rng);
}

TEST_CASE("f32_gemm: the clamp passes NaN through, and infinity when there is no activation") {
  if (!x86::f32_kernels_available()) return;
  const int64_t K = 3, N = 20, rows = 7;
  std::vector<float> a(size_t(rows * K), 0.5f), w(size_t(N * K), 1.0f), s(size_t(rows * N), 0.0f);
  a[size_t(2 * K + 1)] = std::nanf("");  // row 2
  s[size_t(4 * N + 17)] = kInf;          // row 4, column 17
  s[size_t(5 * N + 3)] = -kInf;          // row 5, column 3
  const Tensor wp = x86::f32_gemm_pack(w.data(), N, K), bp = x86::f32_gemm_bias(nullptr, N);
  for (float lo : {-kInf, 0.0f}) {
    CAPTURE(lo);
    std::vector<float> out(size_t(rows * N));
    x86::F32Gemm g;
    g.a = a.data(), g.lda = g.K = K, g.w = wp.data<float>(), g.bias = bp.data<float>(), g.N = N;
    g.lo = lo, g.c = out.data(), g.ldc = N, g.sum = s.data(), g.lds = N;
    x86::f32_gemm(g, rows);
    for (int64_t n = 0; n < N; ++n) CHECK(std::isnan(out[size_t(2 * N + n)]));  // Relu(NaN) = NaN
    CHECK(out[size_t(4 * N + 17)] == kInf);
    CHECK(out[size_t(5 * N + 3)] == (lo == 0.0f ? 0.0f : -kInf));
    CHECK(out[0] == 1.5f);
  }
}

namespace {

// x -> Conv 1x1 (C -> M) + Relu = r;  x -> Conv 1x1 (C -> M) = p;  y = act(p + r). The Add is
// fused into one of the convs as its Sum; with r_out, r is a graph output too, so the Sum cannot
// share the conv's output buffer.
ModelBuilder residual_model(int64_t C, int64_t M, const std::string& act, bool r_out,
                            std::mt19937& rng) {
  ModelBuilder mb;
  mb.input("x", {-1, C, -1, -1});
  auto init = [&](const std::string& name, const Dims& shape) {
    Tensor t(DType::F32, shape);
    const std::vector<float> v = uniform(t.numel(), rng, -0.5f, 0.5f);
    std::copy(v.begin(), v.end(), t.data<float>());
    mb.init(name, t);
  };
  init("Wr", {M, C, 1, 1});
  init("Br", {M});
  init("Wp", {M, C, 1, 1});
  init("Bp", {M});
  mb.node("Conv", {"x", "Wr", "Br"}, {"rc"}, "conv_r");
  mb.node("Relu", {"rc"}, {"r"});
  mb.node("Conv", {"x", "Wp", "Bp"}, {"p"}, "conv_p");
  mb.node("Add", {"p", "r"}, {"s"}, "add");
  if (act == "Clip") {
    mb.init("lo", Tensor::from_vector<float>({}, {0.0f}));
    mb.init("hi", Tensor::from_vector<float>({}, {0.25f}));
    mb.node("Clip", {"s", "lo", "hi"}, {"y"});
  } else if (act.empty()) {
    mb.node("Identity", {"s"}, {"y"});
  } else {
    mb.node(act, {"s"}, {"y"});
  }
  mb.output("y");
  if (r_out) mb.output("r");
  return mb;
}

// x -> Conv kh x kw (C -> M, strides sh x sw, pads {top, left, bottom, right}) [+ r, a second
// input] -> act = y.
ModelBuilder conv_model(int64_t C, int64_t M, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                        const std::vector<int64_t>& pads, bool residual, const std::string& act,
                        std::mt19937& rng) {
  ModelBuilder mb;
  mb.input("x", {-1, C, -1, -1});
  if (residual) mb.input("r", {-1, M, -1, -1});
  Tensor w(DType::F32, {M, C, kh, kw}), b(DType::F32, {M});
  for (Tensor* t : {&w, &b}) {
    const std::vector<float> v = uniform(t->numel(), rng, -0.5f, 0.5f);
    std::copy(v.begin(), v.end(), t->data<float>());
  }
  mb.init("W", w);
  mb.init("B", b);
  onnx::NodeProto& conv = mb.node("Conv", {"x", "W", "B"}, {"p"}, "conv");
  ModelBuilder::attr_ints(conv, "strides", {sh, sw});
  ModelBuilder::attr_ints(conv, "pads", pads);
  std::string s = "p";
  if (residual) mb.node("Add", {"p", "r"}, {s = "s"}, "add");
  if (act == "Clip") {
    mb.init("lo", Tensor::from_vector<float>({}, {0.0f}));
    mb.init("hi", Tensor::from_vector<float>({}, {0.25f}));
    mb.node("Clip", {s, "lo", "hi"}, {"y"});
  } else if (act.empty()) {
    mb.node("Identity", {s}, {"y"});
  } else {
    mb.node(act, {s}, {"y"});
  }
  mb.output("y");
  return mb;
}

// conv_model's graph (residual or not) on the engine's default backend against the reference
// kernels, at batch 1 and 3 on `threads`, with random inputs of C x H x W (and M x oh x ow).
void check_conv_model(const ModelBuilder& mb, int64_t C, int64_t H, int64_t W, int64_t M,
                      int64_t oh, int64_t ow, bool residual, std::initializer_list<int> threads,
                      std::mt19937& rng) {
  ModelOptions fo, ro;
  ro.backend = "reference";
  Model fast = Model::load_from_memory(mb.bytes(), fo),
        ref = Model::load_from_memory(mb.bytes(), ro);
  for (int64_t batch : {1, 3}) {
    std::vector<Tensor> in{Tensor(DType::F32, {batch, C, H, W})};
    if (residual) in.emplace_back(DType::F32, Dims{batch, M, oh, ow});
    for (Tensor& t : in) {
      const std::vector<float> v = uniform(t.numel(), rng);
      std::copy(v.begin(), v.end(), t.data<float>());
    }
    const std::vector<Tensor> want = ref.run(in);
    for (int t : threads) {
      CAPTURE(batch);
      CAPTURE(t);
      RunOptions o;
      o.threads = t;
      CHECK(max_rel_diff(fast.run(in, o)[0], want[0]) < 2e-5);
    }
  }
}

}  // namespace

TEST_CASE("NhwcConv: strided 1x1 convs (gathered rows) give the reference kernels' outputs") {
  struct Shape {
    int64_t C, M, H, W, sh, sw;
  };
  // Output maps of 17x17, 12x14 and 4x5 (all on f32_gemm when it is available: strided convs at
  // any size); odd heights in two, so an image is not two output rows' pitch there.
  const Shape shapes[] = {{64, 128, 34, 33, 2, 2}, {37, 70, 23, 40, 2, 3}, {5, 48, 7, 9, 2, 2}};
  std::mt19937 rng(11);
  for (const Shape& sh : shapes)
    for (const char* act : {"", "Relu", "Clip"})
      for (bool residual : {false, true}) {
        CAPTURE(sh.C);
        CAPTURE(sh.H);
        CAPTURE(act);
        CAPTURE(residual);
        const ModelBuilder mb =
            conv_model(sh.C, sh.M, 1, 1, sh.sh, sh.sw, {0, 0, 0, 0}, residual, act, rng);
        const int64_t oh = (sh.H - 1) / sh.sh + 1, ow = (sh.W - 1) / sh.sw + 1;
        check_conv_model(mb, sh.C, sh.H, sh.W, sh.M, oh, ow, residual, {1, 2, 3}, rng);
      }
}

TEST_CASE("NhwcConv: 1x1 convs with a residual Sum give the reference kernels' outputs") {
  struct Shape {
    int64_t C, M, H, W;
  };
  // 16x16 and larger maps run on f32_gemm (at least 256 pixels), 7x9 on oneDNN; channel counts
  // with vector tails and 3-vector panels.
  const Shape shapes[] = {{64, 256, 16, 16}, {37, 70, 17, 19}, {5, 48, 20, 13}, {24, 33, 7, 9}};
  std::mt19937 rng(5);
  for (const Shape& sh : shapes)
    for (const char* act : {"", "Relu", "Clip", "Sigmoid"})
      for (bool r_out : {false, true}) {
        CAPTURE(sh.C);
        CAPTURE(sh.M);
        CAPTURE(act);
        CAPTURE(r_out);
        const ModelBuilder mb = residual_model(sh.C, sh.M, act, r_out, rng);
        ModelOptions fo, ro;
        ro.backend = "reference";
        Model fast = Model::load_from_memory(mb.bytes(), fo),
              ref = Model::load_from_memory(mb.bytes(), ro);
        int with_sum = 0;
        for (const Node& n : fast.graph().nodes)
          with_sum += n.op_type == "NhwcConv" && n.inputs.size() > 3 && n.inputs[3] >= 0;
        CHECK(with_sum == 1);
        for (int64_t batch : {1, 3}) {
          Tensor x(DType::F32, {batch, sh.C, sh.H, sh.W});
          const std::vector<float> v = uniform(x.numel(), rng);
          std::copy(v.begin(), v.end(), x.data<float>());
          const std::vector<Tensor> want = ref.run({x});
          for (int threads : {1, 2, 3}) {
            CAPTURE(batch);
            CAPTURE(threads);
            RunOptions o;
            o.threads = threads;
            const std::vector<Tensor> got = fast.run({x}, o);
            CHECK(max_rel_diff(got[0], want[0]) < 2e-5);
            if (r_out) CHECK(got[1].shape() == want[1].shape());
          }
        }
      }
}

namespace {

struct ConvCase {
  int64_t n, h, w, c, m, kh, kw, sh, sw, pt, pl, pb, pr;
  int threads;
  int sum;  // 0 none, 1 separate buffer, 2 in place
  float lo, hi;
};

// f32_conv_parallel against a double-precision direct convolution.
void check_conv(const ConvCase& t, std::mt19937& rng) {
  CAPTURE(t.n);
  CAPTURE(t.h);
  CAPTURE(t.w);
  CAPTURE(t.c);
  CAPTURE(t.m);
  CAPTURE(t.kh);
  CAPTURE(t.kw);
  CAPTURE(t.sh);
  CAPTURE(t.pt);
  CAPTURE(t.threads);
  CAPTURE(t.sum);
  const int64_t oh = (t.h + t.pt + t.pb - t.kh) / t.sh + 1,
                ow = (t.w + t.pl + t.pr - t.kw) / t.sw + 1;
  const int64_t rows = t.n * oh * ow, ldc = t.m + 3, K = t.kh * t.kw * t.c;
  const std::vector<float> x = uniform(t.n * t.h * t.w * t.c, rng), w = uniform(t.m * K, rng),
                           bias = uniform(t.m, rng), s = uniform(rows * ldc, rng);
  const Tensor wp = x86::f32_conv_pack(w.data(), t.m, t.c, t.kh, t.kw),
               bp = x86::f32_gemm_bias(bias.data(), t.m);
  std::vector<float> out(size_t(rows * ldc), 1234.5f), sep = s;
  if (t.sum == 2) out = s;
  x86::F32Conv cv;
  cv.g.K = K, cv.g.w = wp.data<float>(), cv.g.bias = bp.data<float>(), cv.g.N = t.m;
  cv.g.lo = t.lo, cv.g.hi = t.hi, cv.g.c = out.data(), cv.g.ldc = ldc;
  if (t.sum) cv.g.sum = t.sum == 2 ? out.data() : sep.data(), cv.g.lds = ldc;
  cv.x = x.data(), cv.n = t.n, cv.h = t.h, cv.w = t.w, cv.c = t.c, cv.kh = t.kh, cv.kw = t.kw;
  cv.sh = t.sh, cv.sw = t.sw, cv.pt = t.pt, cv.pl = t.pl, cv.oh = oh, cv.ow = ow;
  x86::f32_conv_parallel(cv, t.threads);
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / (oh * ow), y = r % (oh * ow) / ow, xo = r % ow;
    for (int64_t m = 0; m < ldc; ++m) {
      const float got = out[size_t(r * ldc + m)];
      if (m >= t.m) {  // past M: untouched
        bad += got != (t.sum == 2 ? s[size_t(r * ldc + m)] : 1234.5f);
        continue;
      }
      double v = bias[size_t(m)], mag = std::abs(v);
      for (int64_t c = 0; c < t.c; ++c)
        for (int64_t i = 0; i < t.kh; ++i)
          for (int64_t j = 0; j < t.kw; ++j) {
            const int64_t iy = y * t.sh - t.pt + i, ix = xo * t.sw - t.pl + j;
            if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
            const double p = double(x[size_t(((n * t.h + iy) * t.w + ix) * t.c + c)]) *
                             w[size_t(((m * t.c + c) * t.kh + i) * t.kw + j)];
            v += p, mag += std::abs(p);
          }
      if (t.sum) v += s[size_t(r * ldc + m)], mag += std::abs(s[size_t(r * ldc + m)]);
      v = std::min<double>(t.hi, std::max<double>(t.lo, v));
      bad += !(std::abs(got - v) <= 1e-6 * (1 + mag));
    }
  }
  CHECK(bad == 0);
  CHECK(sep == s);
}

}  // namespace

TEST_CASE("f32_conv: implicit-GEMM convolution on small maps matches a double-precision loop") {
  if (!x86::f32_kernels_available()) {
    MESSAGE("no AVX-512F: the own float kernels do not run on this CPU");
    return;
  }
  std::mt19937 rng(23);
  // 3x3 / pad 1 on 7x7 (the resnets' last stage), strided with asymmetric pads, non-square
  // kernels, a map smaller than the kernel's reach (1x1 input, 3x3 kernel), channels with vector
  // tails and panels of 3 vectors, C above one k block (600 > 512: two blocks per tap), rows past
  // one chunk (2 x 13 x 13 = 338 > 288) and fewer rows than threads' blocks.
  const ConvCase cases[] = {
      {1, 7, 7, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, -kInf, kInf},
      {1, 7, 7, 37, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0.0f, kInf},
      {2, 9, 8, 16, 48, 3, 3, 2, 2, 1, 0, 0, 1, 3, 2, 0.0f, 0.5f},
      {1, 6, 5, 5, 20, 1, 3, 1, 2, 0, 1, 0, 1, 2, 0, -kInf, kInf},
      {3, 5, 4, 3, 33, 5, 2, 1, 1, 2, 1, 2, 0, 2, 1, -kInf, 0.75f},
      {1, 1, 1, 40, 160, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, 0.0f, kInf},
      {1, 3, 3, 600, 24, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, -kInf, kInf},
      {2, 13, 13, 8, 96, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 0.0f, kInf},
      {1, 4, 4, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 3, 0, -kInf, kInf},
      {0, 7, 7, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, -kInf, kInf},
  };
  for (const ConvCase& c : cases) check_conv(c, rng);
}

TEST_CASE("NhwcConv: 3x3 and other convs on small maps give the reference kernels' outputs") {
  struct Shape {
    int64_t C, M, H, W, kh, kw, sh, sw;
    std::vector<int64_t> pads;
  };
  // Batch 1 on 7x7 / 4x6 / 3x3 maps (at most 64 output pixels: f32_conv when it is available),
  // batch 3 too (more pixels: oneDNN), so both paths give the reference's answer.
  const Shape shapes[] = {{64, 64, 7, 7, 3, 3, 1, 1, {1, 1, 1, 1}},
                          {37, 70, 13, 14, 3, 3, 2, 2, {1, 1, 0, 1}},
                          {5, 48, 4, 6, 3, 1, 1, 1, {1, 0, 1, 0}},
                          {520, 20, 3, 3, 3, 3, 1, 1, {1, 1, 1, 1}}};
  std::mt19937 rng(29);
  for (const Shape& sh : shapes)
    for (const char* act : {"", "Relu", "Clip", "Sigmoid"})
      for (bool residual : {false, true}) {
        CAPTURE(sh.C);
        CAPTURE(sh.H);
        CAPTURE(act);
        CAPTURE(residual);
        const ModelBuilder mb =
            conv_model(sh.C, sh.M, sh.kh, sh.kw, sh.sh, sh.sw, sh.pads, residual, act, rng);
        const int64_t oh = (sh.H + sh.pads[0] + sh.pads[2] - sh.kh) / sh.sh + 1,
                      ow = (sh.W + sh.pads[1] + sh.pads[3] - sh.kw) / sh.sw + 1;
        check_conv_model(mb, sh.C, sh.H, sh.W, sh.M, oh, ow, residual, {1, 2}, rng);
      }
}
