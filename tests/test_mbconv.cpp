// fuse-mbconv and NhwcMBConv (backends/x86/nhwc_mbconv.cpp): float inverted-residual blocks
// (1x1 expansion -> depthwise 3x3 -> 1x1 projection [+ residual]) on large maps run as one node
// and give the reference kernels' outputs (the same graph with backend "reference") over strides,
// odd sizes, channel counts that are not multiples of 16, every clamp activation, residual sums,
// batches and thread counts; the patterns that must not fuse stay as they were.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>

#include "engine/engine.h"
#include "model_builder.h"

using namespace engine;
using engine::test::ModelBuilder;

namespace {

Tensor uniform(const Dims& shape, std::mt19937& rng, float lo, float hi) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Model load(const ModelBuilder& mb, const std::string& backend, const std::string& fuse = "all",
           std::set<std::string> disabled = {}) {
  ModelOptions o;
  o.backend = backend;
  o.passes.fuse = fuse;
  o.passes.disabled = std::move(disabled);
  return Model::load_from_memory(mb.bytes(), o);
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const Node& n : g.nodes) ++c[n.op_type];
  return c;
}

// Max |a - b| / (1 + |b|).
double max_rel_diff(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.data<float>()[i], b = want.data<float>()[i];
    worst = std::max(worst, std::abs(a - b) / (1.0 + std::abs(b)));
  }
  return worst;
}

// Whether fuse-mbconv fires here: an AVX-512F CPU, no lower ENGINE_ISA level forced.
bool avx512f() {
#if defined(__GNUC__) && defined(__x86_64__)
  const char* isa = std::getenv("ENGINE_ISA");
  return __builtin_cpu_supports("avx512f") && (!isa || !*isa || std::string(isa) == "avx512_vnni");
#else
  return false;
#endif
}

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
    mb.init("We", uniform({b.cexp, b.cin, 1, 1}, rng, -0.5f, 0.5f));
    mb.init("Be", uniform({b.cexp}, rng, -0.5f, 0.5f));
    mb.node("Conv", {v, "We", "Be"}, {"e"}, "expand");
    v = activation(mb, b.exp_act, "e", "ea");
  }
  mb.init("Wd", uniform({b.cexp, 1, b.dw_k, b.dw_k}, rng, -0.5f, 0.5f));
  mb.init("Bd", uniform({b.cexp}, rng, -0.5f, 0.5f));
  auto& d = mb.node("Conv", {v, "Wd", "Bd"}, {"d"}, "dw");
  const int64_t pad = b.dw_k / 2;
  ModelBuilder::attr_ints(d, "pads", {pad, pad, pad, pad});
  ModelBuilder::attr_ints(d, "strides", {b.stride, b.stride});
  ModelBuilder::attr_int(d, "group", b.cexp);
  v = activation(mb, b.dw_act, "d", "da");
  mb.init("Wp", uniform({b.cout, b.cexp, 1, 1}, rng, -0.5f, 0.5f));
  mb.init("Bp", uniform({b.cout}, rng, -0.5f, 0.5f));
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
  Model fast = load(mb, "onednn"), ref = load(mb, "reference");
  auto c = op_counts(fast.graph());
  CHECK(c["NhwcMBConv"] == expect_mbconv);
  if (expect_mbconv) {
    for (const Node& n : fast.graph().nodes)
      if (n.op_type == "NhwcMBConv") CHECK((n.inputs[1] >= 0) == expect_expansion_inside);
  }
  for (int64_t n : {1, 3}) {
    const Tensor x = uniform({n, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
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
  if (!avx512f()) {
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
  if (!avx512f()) return;
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
    Model fast = load(mb, "onednn"), ref = load(mb, "reference");
    auto c = op_counts(fast.graph());
    CHECK(c["NhwcMBConv"] == 1);
    CHECK(c["NhwcConv"] == 1);
    const Tensor x = uniform({1, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
    const std::vector<Tensor> got = fast.run({x}), want = ref.run({x});
    CHECK(max_rel_diff(got[0], want[0]) < 2e-5);
    CHECK(max_rel_diff(got[1], want[1]) < 2e-5);
  }
  SUBCASE("a depthwise output with a second reader: nothing fuses") {
    Block b{16, 96, 24, 106, 106, 1, true, false, "Relu", "Relu", ""};
    ModelBuilder mb = block_model(b, rng);
    mb.output("da");
    auto c = op_counts(load(mb, "onednn").graph());
    CHECK(c["NhwcMBConv"] == 0);
    CHECK(c["NhwcConv"] == 3);
  }
  SUBCASE("--fuse blocks and --disable-pass fuse-mbconv keep the three convs") {
    Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
    ModelBuilder mb = block_model(b, rng);
    CHECK(op_counts(load(mb, "onednn", "blocks").graph())["NhwcConv"] == 3);
    CHECK(op_counts(load(mb, "onednn", "all", {"fuse-mbconv"}).graph())["NhwcConv"] == 3);
    CHECK(op_counts(load(mb, "onednn", "all").graph())["NhwcMBConv"] == 1);
  }
  SUBCASE("ENGINE_ISA forcing a level below avx512_vnni keeps the three convs") {
    Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
    ModelBuilder mb = block_model(b, rng);
    const char* old = std::getenv("ENGINE_ISA");
    const std::string saved = old ? old : "";
    setenv("ENGINE_ISA", "avx2", 1);  // a float graph: no INT8 kernel reads it here
    const int convs = op_counts(load(mb, "onednn").graph())["NhwcConv"];
    if (old)
      setenv("ENGINE_ISA", saved.c_str(), 1);
    else
      unsetenv("ENGINE_ISA");
    CHECK(convs == 3);
  }
}

TEST_CASE("run_watch still sees the tensors fuse-mbconv folds away (the debugger's FP32 side)") {
  if (!avx512f()) return;
  std::mt19937 rng(8);
  const Block b{16, 96, 24, 106, 106, 2, true, false, "Clip", "Clip", ""};
  const ModelBuilder mb = block_model(b, rng);
  Model fast = load(mb, "onednn"), ref = load(mb, "reference");
  REQUIRE(op_counts(fast.graph())["NhwcMBConv"] == 1);
  const Tensor x = uniform({2, b.cin, b.h, b.w}, rng, -1.0f, 1.0f);
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
