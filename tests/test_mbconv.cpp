// fuse-mbconv and NhwcMBConv (backends/x86/nhwc_mbconv.cpp): float inverted-residual blocks
// (1x1 expansion -> depthwise 3x3 -> 1x1 projection [+ residual]) on large maps run as one node
// and give the reference kernels' outputs (the same graph with backend "reference") over strides,
// odd sizes, channel counts that are not multiples of 16, every clamp activation, residual sums,
// batches and thread counts; the patterns that must not fuse stay as they were.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>

#include "backends/registry.h"
#include "backends/x86/f32_gemm.h"
#include "engine/engine.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "ops/igemm.h"

using namespace engine;
using engine::test::load_model;
using engine::test::max_rel_diff;
using engine::test::ModelBuilder;
using engine::test::op_counts;
using engine::test::rand_tensor;

namespace {

struct Block {
  int64_t cin, cexp, cout, h, w, stride;
  bool expand, residual;
  const char* exp_act;   // "", Relu, Clip (0..6)
  const char* dw_act;    // "", Relu, Clip (0..6), or another activation
  const char* proj_act;  // "" or Relu (after the residual Add)
  int64_t dw_k = 3;
};

// Appends activation `act` reading `in`, writing `out` (or renames when there is none).
std::string activation(ModelBuilder& mb, const std::string& act, const std::string& in,
                       const std::string& out) {
  if (act.empty()) return in;
  if (act == "Clip") {
    mb.init(out + "_lo", Tensor::from_vector<float>({}, {0.0f}));
    mb.init(out + "_hi", Tensor::from_vector<float>({}, {6.0f}));
    mb.node("Clip", {in, out + "_lo", out + "_hi"}, {out});
  } else {
    mb.node(act, {in}, {out});
  }
  return out;
}

ModelBuilder block_model(const Block& b, std::mt19937& rng) {
  ModelBuilder mb;
  mb.input("x", {-1, b.cin, b.h, b.w});
  std::string v = "x";
  if (b.expand) {
    mb.init("We", rand_tensor({b.cexp, b.cin, 1, 1}, rng, -0.5f, 0.5f));
    mb.init("Be", rand_tensor({b.cexp}, rng, -0.5f, 0.5f));
    mb.node("Conv", {v, "We", "Be"}, {"e"}, "expand");
    v = activation(mb, b.exp_act, "e", "ea");
  }
  mb.init("Wd", rand_tensor({b.cexp, 1, b.dw_k, b.dw_k}, rng, -0.5f, 0.5f));
  mb.init("Bd", rand_tensor({b.cexp}, rng, -0.5f, 0.5f));
  auto& d = mb.node("Conv", {v, "Wd", "Bd"}, {"d"}, "dw");
  const int64_t pad = b.dw_k / 2;
  ModelBuilder::attr_ints(d, "pads", {pad, pad, pad, pad});
  ModelBuilder::attr_ints(d, "strides", {b.stride, b.stride});
  ModelBuilder::attr_int(d, "group", b.cexp);
  v = activation(mb, b.dw_act, "d", "da");
  mb.init("Wp", rand_tensor({b.cout, b.cexp, 1, 1}, rng, -0.5f, 0.5f));
  mb.init("Bp", rand_tensor({b.cout}, rng, -0.5f, 0.5f));
  mb.node("Conv", {v, "Wp", "Bp"}, {"p"}, "project");
  v = "p";
  if (b.residual) {
    mb.node("Add", {"p", "x"}, {"s"}, "add");
    v = "s";
  }
  v = activation(mb, b.proj_act, v, "y");
  if (v != "y") mb.node("Identity", {v}, {"y"});
  mb.output("y");
  return mb;
}

// The block fused into one NhwcMBConv (with or without its expansion) and matches the reference
// on a few batch sizes and thread counts.
void check_block(const Block& b, int expect_mbconv, bool expect_expansion_inside) {
  std::mt19937 rng(uint32_t(b.cexp * 7 + b.h));
  const ModelBuilder mb = block_model(b, rng);
  Model fast = load_model(mb, "onednn"), ref = load_model(mb, "reference");
  auto c = op_counts(fast.graph());
  CHECK(c["NhwcMBConv"] == expect_mbconv);
  if (expect_mbconv) {
    for (const Node& n : fast.graph().nodes)
      if (n.op_type == "NhwcMBConv") CHECK((n.inputs[1] >= 0) == expect_expansion_inside);
  }
  for (int64_t n : {1, 3}) {
    const Tensor x = rand_tensor({n, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
    const Tensor want = ref.run({x})[0];
    for (int threads : {1, 2, 3}) {
      CAPTURE(n);
      CAPTURE(threads);
      RunOptions o;
      o.threads = threads;
      CHECK(max_rel_diff(fast.run({x}, o)[0], want) < 2e-5);
    }
  }
}

}  // namespace

TEST_CASE("fuse-mbconv: inverted-residual blocks on large maps run as one NhwcMBConv") {
  if (!x86::f32_kernels_available()) {
    MESSAGE("no AVX-512F: fuse-mbconv does not fire on this CPU");
    return;
  }
  // Expanded maps of at least 1 MiB per sample (the pass's threshold).
  const Block cases[] = {
      // mobilenet_v2-like: stride 2, Clip(0, 6) twice, Cout 24 (a vector and a half)
      {16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""},
      // residual, stride 1, odd sizes, Cout 40
      {40, 240, 40, 33, 35, 1, true, true, "Relu", "Relu", ""},
      // residual + Relu after the Add (the projection's activation), odd Cin
      {7, 256, 7, 32, 33, 1, true, true, "Clip", "", "Relu"},
      // no activations, stride 2 on odd sizes, Cout 5
      {3, 128, 5, 45, 47, 2, true, false, "", "", ""},
      // no expansion (the first mobilenet_v2 block): depthwise -> projection
      {32, 32, 16, 91, 93, 1, false, false, "", "Clip", ""},
      {48, 48, 33, 77, 75, 2, false, false, "", "Relu", ""},
  };
  for (const Block& b : cases) {
    CAPTURE(b.cexp);
    CAPTURE(b.h);
    CAPTURE(b.stride);
    check_block(b, 1, b.expand);
  }
}

TEST_CASE("fuse-mbconv leaves what it must not fuse") {
  if (!x86::f32_kernels_available()) return;
  std::mt19937 rng(3);
  SUBCASE("a small map (expanded tensor under 1 MiB) stays on the separate convs") {
    check_block({16, 96, 24, 28, 28, 1, true, false, "Clip", "Clip", ""}, 0, false);
  }
  SUBCASE("a depthwise activation other than Relu / Clip") {
    check_block({16, 96, 24, 106, 106, 2, true, false, "Clip", "Sigmoid", ""}, 0, false);
  }
  SUBCASE("a 5x5 depthwise conv") {
    Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
    b.dw_k = 5;
    check_block(b, 0, false);
  }
  SUBCASE("expanded channels not a multiple of 16") {
    check_block({16, 100, 24, 106, 106, 2, true, false, "Clip", "Clip", ""}, 0, false);
  }
  SUBCASE("an expanded tensor with a second reader: only depthwise -> projection fuse") {
    Block b{16, 96, 24, 106, 106, 1, true, false, "Relu", "Relu", ""};
    ModelBuilder mb = block_model(b, rng);
    mb.output("ea");  // the expansion's output is also a graph output
    Model fast = load_model(mb, "onednn"), ref = load_model(mb, "reference");
    auto c = op_counts(fast.graph());
    CHECK(c["NhwcMBConv"] == 1);
    CHECK(c["NhwcConv"] == 1);
    const Tensor x = rand_tensor({1, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
    const std::vector<Tensor> got = fast.run({x}), want = ref.run({x});
    CHECK(max_rel_diff(got[0], want[0]) < 2e-5);
    CHECK(max_rel_diff(got[1], want[1]) < 2e-5);
  }
  SUBCASE("a depthwise output with a second reader: nothing fuses") {
    Block b{16, 96, 24, 106, 106, 1, true, false, "Relu", "Relu", ""};
    ModelBuilder mb = block_model(b, rng);
    mb.output("da");
    auto c = op_counts(load_model(mb, "onednn").graph());
    CHECK(c["NhwcMBConv"] == 0);
    CHECK(c["NhwcConv"] == 3);
  }
  SUBCASE("--fuse blocks and --disable-pass fuse-mbconv keep the three convs") {
    Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
    ModelBuilder mb = block_model(b, rng);
    CHECK(op_counts(load_model(mb, "onednn", "blocks").graph())["NhwcConv"] == 3);
    CHECK(op_counts(load_model(mb, "onednn", "all", {"fuse-mbconv"}).graph())["NhwcConv"] == 3);
    CHECK(op_counts(load_model(mb, "onednn", "all").graph())["NhwcMBConv"] == 1);
  }
  SUBCASE("a kernel level forced below the best (ENGINE_ISA) keeps the three convs") {
    // The override tests use for ENGINE_ISA (read once per process; `inspect --kernels` in
    // test_cli checks the variable itself).
    Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
    ModelBuilder mb = block_model(b, rng);
    set_igemm_isa_for_testing(IgemmIsa::Avx2);
    const int convs = op_counts(load_model(mb, "onednn").graph())["NhwcConv"];
    reset_igemm_isa_for_testing();
    CHECK(convs == 3);
  }
}

TEST_CASE("run_watch still sees the tensors fuse-mbconv folds away (the debugger's FP32 side)") {
  if (!x86::f32_kernels_available()) return;
  std::mt19937 rng(8);
  const Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
  const ModelBuilder mb = block_model(b, rng);
  Model fast = load_model(mb, "onednn"), ref = load_model(mb, "reference");
  REQUIRE(op_counts(fast.graph())["NhwcMBConv"] == 1);
  const Tensor x = rand_tensor({2, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
  const std::set<std::string> watch = {"ea", "da", "y"};
  std::map<std::string, Tensor> got, want;
  const std::vector<Tensor> out = fast.run_watch(
      {x}, watch, [&](const std::string& n, const Tensor& t) { got[n] = t.clone(); });
  ref.run_watch({x}, watch, [&](const std::string& n, const Tensor& t) { want[n] = t.clone(); });
  for (const std::string& n : watch) {
    CAPTURE(n);
    REQUIRE(got.count(n) == 1);
    REQUIRE(want.count(n) == 1);
    CHECK(max_rel_diff(got[n], want[n]) < 2e-5);
  }
  CHECK(max_rel_diff(out[0], want["y"]) < 2e-5);
  // A watch of values the fused graph has keeps using it (and gives the same output).
  std::map<std::string, Tensor> y_only;
  fast.run_watch({x}, {"y"}, [&](const std::string& n, const Tensor& t) { y_only[n] = t.clone(); });
  CHECK(max_rel_diff(y_only["y"], want["y"]) < 2e-5);
}

namespace {

// NhwcMBConv by hand: naive loops in double over NHWC tensors (Y = clamp(proj(clamp(dw(clamp(
// expand(X)))))) + Sum)), the formula in backends/x86/nhwc_mbconv.cpp.
std::vector<float> naive_mbconv(const Tensor& x, const Tensor* we, const Tensor& be,
                                const Tensor& wd, const Tensor& bd, const Tensor& wp,
                                const Tensor& bp, const Tensor* sum, int64_t s,
                                const float (&lo)[3], const float (&hi)[3]) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3), E = wd.dim(0),
                M = wp.dim(0), Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1;
  auto clamp = [&](double v, int k) { return std::min<double>(std::max<double>(v, lo[k]), hi[k]); };
  std::vector<double> e(size_t(N * H * W * E));
  for (int64_t p = 0; p < N * H * W; ++p)
    for (int64_t m = 0; m < E; ++m) {
      double a = we ? be.data<float>()[m] : 0.0;
      if (!we) a = x.data<float>()[p * C + m];
      for (int64_t c = 0; we && c < C; ++c)
        a += double(x.data<float>()[p * C + c]) * we->data<float>()[m * C + c];
      e[size_t(p * E + m)] = we ? clamp(a, 0) : a;
    }
  std::vector<float> y(size_t(N * Ho * Wo * M));
  std::vector<double> d(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oy = 0; oy < Ho; ++oy)
      for (int64_t ox = 0; ox < Wo; ++ox) {
        for (int64_t m = 0; m < E; ++m) {
          double a = bd.data<float>()[m];
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t iy = oy * s - 1 + ky, ix = ox * s - 1 + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              a += e[size_t(((n * H + iy) * W + ix) * E + m)] *
                   wd.data<float>()[m * 9 + ky * 3 + kx];
            }
          d[size_t(m)] = clamp(a, 1);
        }
        const int64_t q = (n * Ho + oy) * Wo + ox;
        for (int64_t o = 0; o < M; ++o) {
          double a = bp.data<float>()[o] + (sum ? sum->data<float>()[q * M + o] : 0.0f);
          for (int64_t m = 0; m < E; ++m) a += d[size_t(m)] * wp.data<float>()[o * E + m];
          y[size_t(q * M + o)] = float(clamp(a, 2));
        }
      }
  return y;
}

}  // namespace

TEST_CASE("NhwcMBConv equals naive loops: expansion or none, strides, residual, clamps") {
  if (!x86::f32_kernels_available()) return;
  const OpRegistry& reg = engine_registry();
  std::mt19937 rng(17);
  struct Case {
    int64_t n, h, w, cin, cexp, cout, stride;
    bool expand, sum;
  };
  for (const Case& c :
       {Case{2, 9, 11, 5, 32, 7, 1, true, true}, Case{1, 10, 13, 3, 48, 17, 2, true, false},
        Case{3, 7, 6, 16, 16, 40, 2, false, false}, Case{1, 1, 1, 4, 16, 3, 2, true, true}}) {
    CAPTURE(c.h);
    CAPTURE(c.stride);
    const int64_t ho = (c.h - 1) / c.stride + 1, wo = (c.w - 1) / c.stride + 1;
    const Tensor x = rand_tensor({c.n, c.h, c.w, c.cin}, rng, -1, 1);
    const Tensor we = rand_tensor({c.cexp, c.cin, 1, 1}, rng, -0.5f, 0.5f),
                 be = rand_tensor({c.cexp}, rng, -1, 1);
    const Tensor wd = rand_tensor({c.cexp, 1, 3, 3}, rng, -0.5f, 0.5f),
                 bd = rand_tensor({c.cexp}, rng, -1, 1);
    const Tensor wp = rand_tensor({c.cout, c.cexp, 1, 1}, rng, -0.5f, 0.5f),
                 bp = rand_tensor({c.cout}, rng, -1, 1);
    const Tensor sum = rand_tensor({c.n, ho, wo, c.cout}, rng, -1, 1);
    test::NodeSpec spec{"NhwcMBConv", {}, 1, 1, "engine"};
    spec.attrs.set("stride", c.stride);
    // Clamps that bite on both sides, different per stage.
    const float lo[3] = {-0.5f, -0.7f, -0.9f}, hi[3] = {0.8f, 0.6f, 0.95f};
    const char* stage[3] = {"exp", "dw", "proj"};
    for (int k = 0; k < 3; ++k) {
      spec.attrs.set(std::string(stage[k]) + "_min", lo[k]);
      spec.attrs.set(std::string(stage[k]) + "_max", hi[k]);
    }
    const Tensor y = test::run_node(reg, spec,
                                    {x, c.expand ? we : Tensor(), c.expand ? be : Tensor(), wd, bd,
                                     wp, bp, c.sum ? sum : Tensor()})[0];
    test::check_close(y,
                      naive_mbconv(x, c.expand ? &we : nullptr, be, wd, bd, wp, bp,
                                   c.sum ? &sum : nullptr, c.stride, lo, hi),
                      {c.n, ho, wo, c.cout}, 1e-5f, 1e-5f);
  }
}

TEST_CASE("NhwcMBConv rejects bad attributes and shapes with clear messages") {
  const OpRegistry& reg = engine_registry();
  std::mt19937 rng(2);
  const Tensor x = rand_tensor({1, 4, 4, 16}, rng, -1, 1),
               wd = rand_tensor({16, 1, 3, 3}, rng, -1, 1);
  const Tensor wp = rand_tensor({8, 16, 1, 1}, rng, -1, 1);
  auto run = [&](Attributes a, const Tensor& dw, const Tensor& proj) {
    test::NodeSpec spec{"NhwcMBConv", std::move(a), 1, 1, "engine"};
    test::run_node(reg, spec, {x, Tensor(), Tensor(), dw, Tensor(), proj, Tensor()});
  };
  Attributes stride3;
  stride3.set("stride", int64_t(3));
  CHECK_THROWS_WITH(run(stride3, wd, wp), doctest::Contains("stride must be 1 or 2"));
  Attributes bad_clamp;
  bad_clamp.set("dw_min", 1.0f);
  bad_clamp.set("dw_max", 0.0f);
  CHECK_THROWS_WITH(run(bad_clamp, wd, wp), doctest::Contains("dw_min (1) exceeds dw_max (0)"));
  CHECK_THROWS_WITH(run({}, wd, rand_tensor({8, 12, 1, 1}, rng, -1, 1)),
                    doctest::Contains("W_proj (input 5) must be float32 [8,16,1,1]"));
  const Tensor x20 = rand_tensor({1, 4, 4, 20}, rng, -1, 1);
  test::NodeSpec spec{"NhwcMBConv", {}, 1, 1, "engine"};
  CHECK_THROWS_WITH(test::run_node(reg, spec,
                                   {x20, Tensor(), Tensor(), rand_tensor({20, 1, 3, 3}, rng, -1, 1),
                                    Tensor(), rand_tensor({8, 20, 1, 1}, rng, -1, 1), Tensor()}),
                    doctest::Contains("must be a positive multiple of 16"));
}
