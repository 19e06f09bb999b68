// fuse-stem and NhwcStem (backends/x86/nhwc_stem.cpp): a first conv on at most 4 input channels,
// with the Transpose before it and / or the max pool after it, runs as one node and gives the
// reference kernels' outputs (the same graph with backend "reference") over kernel sizes,
// strides, asymmetric pads, channel counts that are not multiples of 16 (and more than one
// weight panel), every clamp activation, pools with padding, NCHW and NHWC inputs, batches and
// thread counts; the patterns that must not fuse stay as they were.
#include <doctest/doctest.h>

#include <map>
#include <random>

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

struct Stem {
  int64_t C, M, H, W, kh, kw, sh, sw;
  std::vector<int64_t> pads;  // conv: top, left, bottom, right
  const char* act;            // "", Relu, Clip (0..6), Sigmoid
  std::vector<int64_t> pool;  // empty, or kernel h, w, stride h, w, pads t, l, b, r
  bool pre_pool = false;      // a 2x2 stride-1 max pool before the conv (NHWC input)
};

ModelBuilder stem_model(const Stem& s, std::mt19937& rng) {
  ModelBuilder mb;
  mb.input("x", {-1, s.C, s.H, s.W});
  std::string v = "x";
  if (s.pre_pool) {
    auto& p = mb.node("MaxPool", {v}, {"xp"}, "pre_pool");
    ModelBuilder::attr_ints(p, "kernel_shape", {2, 2});
    v = "xp";
  }
  mb.init("W", rand_tensor({s.M, s.C, s.kh, s.kw}, rng, -0.5f, 0.5f));
  mb.init("B", rand_tensor({s.M}, rng, -0.5f, 0.5f));
  auto& c = mb.node("Conv", {v, "W", "B"}, {"c"}, "stem");
  ModelBuilder::attr_ints(c, "strides", {s.sh, s.sw});
  ModelBuilder::attr_ints(c, "pads", s.pads);
  v = "c";
  if (std::string(s.act) == "Clip") {
    mb.init("lo", Tensor::from_vector<float>({}, {0.0f}));
    mb.init("hi", Tensor::from_vector<float>({}, {0.5f}));
    mb.node("Clip", {v, "lo", "hi"}, {"a"});
    v = "a";
  } else if (*s.act) {
    mb.node(s.act, {v}, {"a"});
    v = "a";
  }
  if (!s.pool.empty()) {
    auto& p = mb.node("MaxPool", {v}, {"y"}, "pool");
    ModelBuilder::attr_ints(p, "kernel_shape", {s.pool[0], s.pool[1]});
    ModelBuilder::attr_ints(p, "strides", {s.pool[2], s.pool[3]});
    ModelBuilder::attr_ints(p, "pads", {s.pool[4], s.pool[5], s.pool[6], s.pool[7]});
  } else {
    mb.node("Identity", {v}, {"y"});
  }
  mb.output("y");
  return mb;
}

void check_against_reference(const ModelBuilder& mb, Model& fast, const Stem& s,
                             std::mt19937& rng) {
  Model ref = load_model(mb, "reference");
  for (int64_t n : {1, 3}) {
    const Tensor x = rand_tensor({n, s.C, s.H, s.W}, rng, -1.0f, 1.0f);
    const std::vector<Tensor> want = ref.run({x});
    for (int threads : {1, 2, 3}) {
      CAPTURE(n);
      CAPTURE(threads);
      RunOptions o;
      o.threads = threads;
      CHECK(max_rel_diff(fast.run({x}, o), want) < 2e-5);
    }
  }
}

}  // namespace

TEST_CASE("fuse-stem: a first conv with its Transpose and max pool runs as one NhwcStem") {
  if (!x86::f32_kernels_available()) {
    MESSAGE("no AVX-512F: fuse-stem does not fire on this CPU");
    return;
  }
  const Stem cases[] = {
      // the resnet stem on an odd-sized map: 7x7 stride 2 pad 3, Relu, max pool 3x3 s2 p1
      {3, 64, 61, 59, 7, 7, 2, 2, {3, 3, 3, 3}, "Relu", {3, 3, 2, 2, 1, 1, 1, 1}},
      // one channel, 20 outputs (a vector tail), Clip, a 2x2 pool without padding
      {1, 20, 17, 23, 5, 5, 1, 1, {2, 2, 2, 2}, "Clip", {2, 2, 2, 2, 0, 0, 0, 0}},
      // four channels, 100 outputs (a 64-channel panel and a 48-channel one), asymmetric
      // conv pads, no activation, no pool (only the Transpose fuses)
      {4, 100, 30, 27, 3, 3, 2, 2, {1, 0, 0, 1}, "", {}},
      // a 3x5 kernel with strides 1 x 2, a 3x2 pool with strides 1 x 2 and uneven pads
      {2, 16, 19, 40, 3, 5, 1, 2, {1, 2, 1, 2}, "Relu", {3, 2, 1, 2, 1, 1, 0, 1}},
      // a vgg-like first conv: 3x3 s1 p1, Relu, 32 outputs (12-pixel tiles of two vectors)
      {3, 32, 33, 35, 3, 3, 1, 1, {1, 1, 1, 1}, "Relu", {}},
      // NHWC input (a max pool before the conv): only the pool after it fuses
      {3, 24, 40, 41, 3, 3, 2, 2, {1, 1, 1, 1}, "Relu", {3, 3, 2, 2, 1, 1, 1, 1}, true},
  };
  int i = 0;
  for (const Stem& s : cases) {
    CAPTURE(i++);
    std::mt19937 rng(uint32_t(s.M * 13 + s.H));
    const ModelBuilder mb = stem_model(s, rng);
    Model fast = load_model(mb, "onednn");
    auto c = op_counts(fast.graph());
    CHECK(c["NhwcStem"] == 1);
    CHECK(c["NhwcConv"] == 0);
    CHECK(c["NhwcMaxPool"] == (s.pre_pool ? 1 : 0));
    CHECK(c["Transpose"] == (s.pre_pool ? 2 : 1));  // the output's, and the pre-pool input's
    for (const Node& n : fast.graph().nodes)
      if (n.op_type == "NhwcStem") CHECK(n.attrs.get_int("nchw", -1) == (s.pre_pool ? 0 : 1));
    check_against_reference(mb, fast, s, rng);
  }
}

TEST_CASE("fuse-stem leaves what it must not fuse") {
  if (!x86::f32_kernels_available()) return;
  std::mt19937 rng(4);
  const Stem resnet{3, 64, 45, 45, 7, 7, 2, 2, {3, 3, 3, 3}, "Relu", {3, 3, 2, 2, 1, 1, 1, 1}};
  SUBCASE("five input channels") {
    Stem s = resnet;
    s.C = 5;
    CHECK(op_counts(load_model(stem_model(s, rng), "onednn").graph())["NhwcStem"] == 0);
  }
  SUBCASE("an activation other than Relu / Clip") {
    Stem s = resnet;
    s.act = "Sigmoid";
    CHECK(op_counts(load_model(stem_model(s, rng), "onednn").graph())["NhwcStem"] == 0);
  }
  SUBCASE("a lone conv (NHWC input, no pool) stays on oneDNN") {
    Stem s = resnet;
    s.pool.clear();
    s.pre_pool = true;
    auto c = op_counts(load_model(stem_model(s, rng), "onednn").graph());
    CHECK(c["NhwcStem"] == 0);
    CHECK(c["NhwcConv"] == 1);
  }
  SUBCASE("a conv output with a second reader keeps its max pool") {
    ModelBuilder mb = stem_model(resnet, rng);
    mb.output("a");  // the activation's output is also a graph output
    Model fast = load_model(mb, "onednn");
    auto c = op_counts(fast.graph());
    CHECK(c["NhwcStem"] == 1);  // with the Transpose only
    CHECK(c["NhwcMaxPool"] == 1);
    const Tensor x = rand_tensor({2, 3, 45, 45}, rng, -1.0f, 1.0f);
    CHECK(max_rel_diff(fast.run({x}), load_model(mb, "reference").run({x})) < 2e-5);
  }
  SUBCASE("a pool whose padding is as large as its kernel") {
    Stem s = resnet;
    s.pool = {2, 2, 2, 2, 0, 0, 2, 0};
    ModelBuilder mb = stem_model(s, rng);
    auto c = op_counts(load_model(mb, "onednn").graph());
    CHECK(c["NhwcStem"] == 1);  // with the Transpose only
    CHECK(c["NhwcMaxPool"] == 1);
  }
  SUBCASE("--fuse blocks, --disable-pass fuse-stem and a lowered kernel level keep the convs") {
    const ModelBuilder mb = stem_model(resnet, rng);
    CHECK(op_counts(load_model(mb, "onednn", "blocks").graph())["NhwcConv"] == 1);
    CHECK(op_counts(load_model(mb, "onednn", "all", {"fuse-stem"}).graph())["NhwcConv"] == 1);
    set_igemm_isa_for_testing(IgemmIsa::Avx2);
    const int convs = op_counts(load_model(mb, "onednn").graph())["NhwcConv"];
    reset_igemm_isa_for_testing();
    CHECK(convs == 1);
  }
}

TEST_CASE("run_watch still sees the conv output fuse-stem folds away (the debugger's FP32 side)") {
  if (!x86::f32_kernels_available()) return;
  std::mt19937 rng(9);
  const Stem s{3, 64, 45, 45, 7, 7, 2, 2, {3, 3, 3, 3}, "Relu", {3, 3, 2, 2, 1, 1, 1, 1}};
  const ModelBuilder mb = stem_model(s, rng);
  Model fast = load_model(mb, "onednn"), ref = load_model(mb, "reference");
  REQUIRE(op_counts(fast.graph())["NhwcStem"] == 1);
  const Tensor x = rand_tensor({2, 3, 45, 45}, rng, -1.0f, 1.0f);
  const std::set<std::string> watch = {"a", "y"};  // a: the conv (+ Relu) output
  std::map<std::string, Tensor> got, want;
  fast.run_watch({x}, watch, [&](const std::string& n, const Tensor& t) { got[n] = t.clone(); });
  ref.run_watch({x}, watch, [&](const std::string& n, const Tensor& t) { want[n] = t.clone(); });
  for (const std::string& n : watch) {
    CAPTURE(n);
    REQUIRE(got.count(n) == 1);
    REQUIRE(want.count(n) == 1);
    CHECK(max_rel_diff(got[n], want[n]) < 2e-5);
  }
}
