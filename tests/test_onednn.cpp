// The oneDNN backend (backends/onednn) and its lowering pass (lower-onednn): every lowered graph
// gives the reference kernels' outputs (the same graph loaded with backend "reference") on random
// inputs over odd shapes, strides, pads, dilations, groups, depthwise, every fused activation and
// residual sums; the lowered graph keeps consecutive layers in NHWC (Transposes only at borders);
// one compiled model runs on several threads at once with single-thread bits.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "backends/onednn/onednn.h"
#include "backends/x86/f32_gemm.h"
#include "engine/engine.h"
#include "model_builder.h"
#include "op_test_util.h"

using namespace engine;
using engine::test::load_model;
using engine::test::max_rel_diff;
using engine::test::ModelBuilder;
using engine::test::op_counts;
using engine::test::rand_tensor;

namespace {

// Runs the graph on both backends; checks the oneDNN graph lowered `expect_op` (when given) and
// the outputs agree. Returns the oneDNN model.
Model check_backends_agree(const ModelBuilder& mb, const Dims& in_shape,
                           const std::string& expect_op, const std::string& fuse = "all",
                           const std::set<std::string>& disabled = {}) {
  Model fast = load_model(mb, "onednn", fuse, disabled), ref = load_model(mb, "reference", fuse);
  if (!expect_op.empty()) CHECK_MESSAGE(op_counts(fast.graph())[expect_op] >= 1, expect_op);
  std::mt19937 rng(99);
  const Tensor x = rand_tensor(in_shape, rng);
  CHECK(max_rel_diff(fast.run({x}), ref.run({x})) < 2e-5);
  return fast;
}

struct ConvCase {
  int64_t n, c, h, w, m, k, stride, pad, dil, group;
  const char* auto_pad;
};

}  // namespace

TEST_CASE("NhwcConv matches the reference Conv: odd channels, strides, pads, dilations, groups") {
  const ConvCase cases[] = {
      {1, 1, 5, 5, 1, 1, 1, 0, 1, 1, ""},           {2, 3, 7, 9, 17, 3, 1, 1, 1, 1, ""},
      {1, 7, 11, 6, 33, 3, 2, 1, 1, 1, ""},         {3, 17, 9, 9, 7, 5, 1, 2, 1, 1, ""},
      {1, 33, 8, 8, 16, 1, 2, 0, 1, 1, ""},         {2, 16, 10, 10, 16, 3, 1, 2, 2, 1, ""},
      {1, 32, 12, 12, 32, 3, 1, 1, 1, 32, ""},      {2, 33, 9, 9, 33, 3, 2, 1, 1, 33, ""},
      {1, 24, 7, 7, 24, 5, 1, 2, 1, 24, ""},        {1, 12, 8, 8, 18, 3, 1, 1, 1, 3, ""},
      {1, 6, 9, 7, 4, 3, 2, 0, 1, 2, ""},           {1, 5, 9, 10, 8, 3, 2, 0, 1, 1, "SAME_UPPER"},
      {2, 4, 6, 6, 3, 2, 1, 0, 1, 1, "SAME_LOWER"}, {1, 3, 4, 4, 5, 3, 1, 0, 1, 1, "VALID"},
  };
  std::mt19937 rng(5);
  for (const ConvCase& t : cases) {
    CAPTURE(t.c);
    CAPTURE(t.m);
    CAPTURE(t.k);
    CAPTURE(t.stride);
    CAPTURE(t.group);
    const std::string auto_pad = t.auto_pad;
    CAPTURE(auto_pad);
    ModelBuilder mb;
    mb.input("x", {-1, t.c, t.h, t.w});
    mb.init("W", rand_tensor({t.m, t.c / t.group, t.k, t.k}, rng));
    mb.init("B", rand_tensor({t.m}, rng));
    auto& n = mb.node("Conv", {"x", "W", "B"}, {"y"}, "conv");
    ModelBuilder::attr_ints(n, "strides", {t.stride, t.stride});
    ModelBuilder::attr_ints(n, "dilations", {t.dil, t.dil});
    if (std::string(t.auto_pad).empty())
      ModelBuilder::attr_ints(n, "pads", {t.pad, t.pad + (t.k > 1 ? 1 : 0), t.pad, t.pad});
    else
      ModelBuilder::attr_string(n, "auto_pad", t.auto_pad);
    if (t.group > 1) ModelBuilder::attr_int(n, "group", t.group);
    mb.output("y");
    // Without fuse-stem, which takes convs on <= 4 channels fed by the input Transpose
    // (tests/test_stem.cpp).
    check_backends_agree(mb, {t.n, t.c, t.h, t.w}, "NhwcConv", "all", {"fuse-stem"});
  }
}

TEST_CASE("NhwcConv fuses every activation and the residual sum (fused graph vs reference)") {
  for (const std::string act :
       {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "SiLU", "Tanh"}) {
    CAPTURE(act);
    std::mt19937 rng(11);
    ModelBuilder mb;
    mb.input("x", {-1, 8, 6, 6});
    mb.init("W1", rand_tensor({8, 8, 3, 3}, rng, -0.5f, 0.5f));
    mb.init("W2", rand_tensor({8, 8, 3, 3}, rng, -0.5f, 0.5f));
    mb.init("B", rand_tensor({8}, rng));
    auto pads = [](onnx::NodeProto& n) { ModelBuilder::attr_ints(n, "pads", {1, 1, 1, 1}); };
    pads(mb.node("Conv", {"x", "W1", "B"}, {"c1"}, "conv1"));
    pads(mb.node("Conv", {"c1", "W2", "B"}, {"c2"}, "conv2"));
    mb.node("Add", {"c2", "x"}, {"s"}, "add");
    const std::string& a = act;
    if (a == "SiLU") {
      mb.node("Sigmoid", {"s"}, {"sg"});
      mb.node("Mul", {"s", "sg"}, {"y"});
    } else if (a == "Clip") {
      mb.init("lo", Tensor::from_vector<float>({}, {-0.5f}));
      mb.init("hi", Tensor::from_vector<float>({}, {0.75f}));
      mb.node("Clip", {"s", "lo", "hi"}, {"y"});
    } else {
      mb.node(a, {"s"}, {"y"});
    }
    mb.output("y");
    Model m = check_backends_agree(mb, {2, 8, 6, 6}, "NhwcConv");
    // After a residual Add only Relu/Clip fuse; the others run unfused on the NHWC values.
    auto c = op_counts(m.graph());
    CHECK(c["NhwcConv"] == 2);
    CHECK(c["Transpose"] == 2);
    if (a == "Relu" || a == "Clip") CHECK(c.size() == 2);
  }
}

TEST_CASE("NHWC pools match the reference pools; ceil_mode stays on the reference kernel") {
  struct PoolCase {
    const char* op;
    int64_t k, s, pad, include_pad, ceil;
  };
  for (const PoolCase& p :
       {PoolCase{"MaxPool", 3, 2, 1, 0, 0}, PoolCase{"MaxPool", 2, 2, 0, 0, 0},
        PoolCase{"AveragePool", 3, 2, 1, 0, 0}, PoolCase{"AveragePool", 3, 2, 1, 1, 0},
        PoolCase{"AveragePool", 2, 1, 1, 1, 0}, PoolCase{"MaxPool", 3, 2, 0, 0, 1}}) {
    const std::string op = p.op;
    CAPTURE(op);
    CAPTURE(p.k);
    CAPTURE(p.pad);
    CAPTURE(p.include_pad);
    ModelBuilder mb;
    mb.input("x", {-1, 7, 9, 8});
    auto& n = mb.node(p.op, {"x"}, {"y"}, "pool");
    ModelBuilder::attr_ints(n, "kernel_shape", {p.k, p.k});
    ModelBuilder::attr_ints(n, "strides", {p.s, p.s});
    ModelBuilder::attr_ints(n, "pads", {p.pad, p.pad, p.pad, 0});
    if (p.include_pad) ModelBuilder::attr_int(n, "count_include_pad", 1);
    if (p.ceil) ModelBuilder::attr_int(n, "ceil_mode", 1);
    mb.output("y");
    const std::string lowered = p.ceil ? "" : "Nhwc" + std::string(p.op);
    Model m = check_backends_agree(mb, {2, 7, 9, 8}, lowered);
    if (p.ceil) CHECK(op_counts(m.graph()) == std::map<std::string, int>{{p.op, 1}});
  }
  for (const std::string op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    CAPTURE(op);
    ModelBuilder mb;
    mb.input("x", {-1, 19, 5, 7});
    mb.node(op, {"x"}, {"y"}, "gp");
    mb.output("y");
    check_backends_agree(mb, {3, 19, 5, 7}, "Nhwc" + op);
  }
}

TEST_CASE("lower-onednn keeps a residual network in NHWC: Transposes only at the borders") {
  std::mt19937 rng(3);
  ModelBuilder mb;
  mb.input("x", {-1, 3, 16, 16});
  auto conv = [&](const std::string& in, const std::string& out, int64_t c, int64_t m, int64_t k,
                  int64_t s) {
    mb.init(out + "_W", rand_tensor({m, c, k, k}, rng, -0.3f, 0.3f));
    auto& n = mb.node("Conv", {in, out + "_W"}, {out}, out);
    ModelBuilder::attr_ints(n, "pads", {k / 2, k / 2, k / 2, k / 2});
    ModelBuilder::attr_ints(n, "strides", {s, s});
  };
  conv("x", "stem", 3, 16, 3, 1);
  mb.node("Relu", {"stem"}, {"r0"});
  auto& mp = mb.node("MaxPool", {"r0"}, {"p0"});
  ModelBuilder::attr_ints(mp, "kernel_shape", {3, 3});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  ModelBuilder::attr_ints(mp, "pads", {1, 1, 1, 1});
  conv("p0", "b1", 16, 16, 3, 1);
  mb.node("Relu", {"b1"}, {"r1"});
  conv("r1", "b2", 16, 16, 3, 1);
  mb.node("Add", {"b2", "p0"}, {"a"});
  mb.node("Relu", {"a"}, {"r2"});
  conv("r2", "down", 16, 32, 1, 2);  // 1x1 stride 2
  mb.node("GlobalAveragePool", {"down"}, {"g"});
  mb.node("Flatten", {"g"}, {"y"});
  // A second output read in NCHW by the caller: its Transpose must stay.
  mb.output("y");
  mb.output("r2");
  for (const std::string fuse : {"all", "none"}) {
    CAPTURE(fuse);
    Model m = check_backends_agree(mb, {2, 3, 16, 16}, "NhwcConv", fuse);
    auto c = op_counts(m.graph());
    // With AVX-512F at fusion level all, fuse-stem takes the input Transpose, the stem conv and
    // its max pool (tests/test_stem.cpp).
    const bool stem = fuse == "all" && x86::f32_kernels_available();
    CHECK(c["NhwcStem"] == (stem ? 1 : 0));
    CHECK(c["NhwcConv"] == (stem ? 3 : 4));
    CHECK(c["NhwcMaxPool"] == (stem ? 0 : 1));
    CHECK(c["NhwcGlobalAveragePool"] == 1);
    // Into NHWC once (x), out of it for y's Flatten and for the graph output r2.
    CHECK(c["Transpose"] == (stem ? 2 : 3));
    CHECK(c["Conv"] + c["FusedConv"] + c["MaxPool"] == 0);
  }
  // The reference backend and an explicit --disable-pass lower-onednn do not lower.
  ModelOptions o;
  o.passes.disabled.insert("lower-onednn");
  Model plain = Model::load_from_memory(mb.bytes(), o);
  CHECK(op_counts(plain.graph())["NhwcConv"] == 0);
  CHECK(op_counts(load_model(mb, "reference").graph())["NhwcConv"] == 0);
  // Quantization works on the graph before lowering; the INT8 graph is lowered in turn (QConv ->
  // NhwcQConv, uint8 MaxPool -> NhwcMaxPool) and gives the reference backend's integers exactly.
  Model fast = load_model(mb, "onednn");
  CHECK(op_counts(fast.ir())["FusedConv"] + op_counts(fast.ir())["Conv"] == 4);
  auto quantized = [&](Model& m) {
    std::mt19937 calib_rng(3);
    auto batches = [n = 0, &calib_rng](std::vector<Tensor>& in) mutable {
      if (n++ == 3) return false;
      in.push_back(rand_tensor({2, 3, 16, 16}, calib_rng));
      return true;
    };
    return m.quantize(quant::QuantConfig{}, batches);
  };
  Model q = quantized(fast);
  Model ref = load_model(mb, "reference");
  Model qref = quantized(ref);
  CHECK(op_counts(q.ir())["QConv"] == 4);
  auto qc = op_counts(q.graph());
  CHECK(qc["NhwcQConv"] == 4);
  CHECK(qc["QConv"] + qc["NhwcConv"] == 0);
  CHECK(qc["NhwcMaxPool"] == 1);
  CHECK(op_counts(qref.graph())["QConv"] == 4);
  const Tensor x = rand_tensor({2, 3, 16, 16}, rng);
  const std::vector<Tensor> a = q.run({x}), b = qref.run({x});
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].shape() == b[i].shape());
    CHECK(std::memcmp(a[i].raw(), b[i].raw(), size_t(a[i].numel()) * sizeof(float)) == 0);
  }
}

TEST_CASE("QGemm lowers to a 1x1 NhwcQConv: same integers (u8/s8 inputs, transB, per channel)") {
  std::mt19937 rng(5);
  for (int variant = 0; variant < 8; ++variant) {
    const bool trans_b = variant % 2 == 1, per_channel = variant / 2 % 2 == 1;
    const bool s8 = variant / 4 == 1;
    CAPTURE(variant);
    const int64_t K = 37 + 16 * variant, N = 5 + 9 * variant;  // odd sizes: K % 4 != 0 at times
    ModelBuilder mb;
    mb.input("x", {-1, K});
    mb.init("B", rand_tensor(trans_b ? Dims{N, K} : Dims{K, N}, rng, -0.5f, 0.5f));
    mb.init("C", rand_tensor({N}, rng));
    auto& g = mb.node("Gemm", {"x", "B", "C"}, {"g"}, "fc");
    if (trans_b) ModelBuilder::attr_int(g, "transB", 1);
    mb.node("Relu", {"g"}, {"y"});
    mb.output("y");
    quant::QuantConfig cfg;
    cfg.defaults.per_channel = per_channel;
    if (s8) cfg.defaults.mode_a = quant::QMode::AsymS;
    auto quantized = [&](const std::string& backend) {
      Model m = load_model(mb, backend);
      std::mt19937 calib_rng(7);
      auto batches = [n = 0, &calib_rng, K](std::vector<Tensor>& in) mutable {
        if (n++ == 2) return false;
        in.push_back(rand_tensor({4, K}, calib_rng));
        return true;
      };
      return m.quantize(cfg, batches);
    };
    Model q = quantized("onednn"), qref = quantized("reference");
    CHECK(op_counts(q.graph())["NhwcQConv"] == 1);
    CHECK(op_counts(q.graph())["QGemm"] == 0);
    CHECK(op_counts(qref.graph())["QGemm"] == 1);
    for (int64_t batch : {1, 3, 7}) {
      const Tensor x = rand_tensor({batch, K}, rng, -1.2f, 1.2f);
      const std::vector<Tensor> a = q.run({x}), b = qref.run({x});
      REQUIRE(a.size() == 1);
      REQUIRE(a[0].shape() == b[0].shape());
      CHECK(std::memcmp(a[0].raw(), b[0].raw(), size_t(a[0].numel()) * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("QLinearMatMul lowers to a 1x1 NhwcQConv: same integers (per-column scales)") {
  std::mt19937 rng(6);
  for (const auto& [K, N] : {std::pair<int64_t, int64_t>{37, 5}, {1280, 1000}, {64, 130}}) {
    CAPTURE(K);
    ModelBuilder mb;
    mb.input("x", {-1, K});
    mb.init("xs", Tensor::scalar<float>(0.02f));
    mb.init("xz", Tensor::scalar<uint8_t>(130));
    Tensor b(DType::I8, {K, N});
    std::uniform_int_distribution<int> u(-127, 127);
    for (int64_t i = 0; i < b.numel(); ++i) b.data<int8_t>()[i] = int8_t(u(rng));
    mb.init("B", b);
    std::vector<float> bs;
    for (int64_t j = 0; j < N; ++j) bs.push_back(0.4f / float(K) * float(1 + j % 7));
    mb.init("bs", Tensor::from_vector<float>({N}, bs));
    mb.init("bz", Tensor(DType::I8, {N}));
    mb.init("ys", Tensor::scalar<float>(0.05f));
    mb.init("yz", Tensor::scalar<uint8_t>(100));
    mb.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, "q");
    mb.node("QLinearMatMul", {"xq", "xs", "xz", "B", "bs", "bz", "ys", "yz"}, {"yq"}, "mm");
    mb.node("DequantizeLinear", {"yq", "ys", "yz"}, {"y"}, "dq");
    mb.output("y");
    Model fast = load_model(mb, "onednn"), ref = load_model(mb, "reference");
    CHECK(op_counts(fast.graph())["QLinearMatMul"] == 0);
    CHECK(op_counts(fast.graph())["NhwcQConv"] == 1);
    CHECK(op_counts(ref.graph())["QLinearMatMul"] == 1);
    for (int64_t batch : {1, 4}) {
      const Tensor x = rand_tensor({batch, K}, rng, -2.5f, 2.5f);
      const Tensor a = fast.run({x})[0], c = ref.run({x})[0];
      REQUIRE(a.shape() == c.shape());
      CHECK(std::memcmp(a.raw(), c.raw(), size_t(a.nbytes())) == 0);
      int distinct = 0;  // not saturated
      for (int64_t i = 1; i < c.numel(); ++i) distinct += c.data<float>()[i] != c.data<float>()[0];
      CHECK(distinct > c.numel() / 2);
    }
  }
}

TEST_CASE("one oneDNN model runs on several threads at once with single-thread bits") {
  std::mt19937 rng(21);
  ModelBuilder mb;
  mb.input("x", {-1, 8, 12, 12});
  mb.init("W", rand_tensor({16, 8, 3, 3}, rng));
  auto& n = mb.node("Conv", {"x", "W"}, {"c"}, "conv");
  ModelBuilder::attr_ints(n, "pads", {1, 1, 1, 1});
  mb.node("Relu", {"c"}, {"r"});
  auto& mp = mb.node("MaxPool", {"r"}, {"y"});
  ModelBuilder::attr_ints(mp, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  mb.output("y");
  const Model m = load_model(mb, "onednn");
  std::vector<Tensor> inputs, want;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(rand_tensor({1 + i, 8, 12, 12}, rng));
    RunOptions one;
    one.threads = 1;
    want.push_back(m.run({inputs.back()}, one)[0]);
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      RunOptions one;
      one.threads = 1;
      for (int r = 0; r < 20; ++r) {
        const Tensor y = m.run({inputs[size_t(t)]}, one)[0];
        if (std::memcmp(y.raw(), want[size_t(t)].raw(), y.nbytes()) != 0) ++mismatches[size_t(t)];
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("DnnlGemm (oneDNN inner product) matches the reference Gemm; other Gemms stay") {
  struct GemmCase {
    int64_t k, n;
    int trans_b;
    Dims c;  // {} = no C
    float alpha;
    const char* act;  // "" = none
    bool lowered;
  };
  const GemmCase cases[] = {
      {17, 10, 1, {10}, 1.0f, "", true},     {33, 7, 0, {1, 7}, 1.0f, "Relu", true},
      {64, 1, 1, {}, 1.0f, "Sigmoid", true}, {5, 3, 0, {3}, 0.5f, "", false},
      {6, 4, 1, {2, 4}, 1.0f, "", false},  // C [M, N]: not a row of biases
  };
  std::mt19937 rng(8);
  for (const GemmCase& t : cases) {
    CAPTURE(t.k);
    CAPTURE(t.n);
    CAPTURE(t.trans_b);
    ModelBuilder mb;
    mb.input("a", {-1, t.k});
    mb.init("B", rand_tensor(t.trans_b ? Dims{t.n, t.k} : Dims{t.k, t.n}, rng));
    std::vector<std::string> in{"a", "B"};
    if (!t.c.empty()) {
      mb.init("C", rand_tensor(t.c, rng));
      in.push_back("C");
    }
    auto& n = mb.node("Gemm", in, {std::string(t.act).empty() ? "y" : "g"}, "fc");
    ModelBuilder::attr_int(n, "transB", t.trans_b);
    if (t.alpha != 1.0f) ModelBuilder::attr_float(n, "alpha", t.alpha);
    if (!std::string(t.act).empty()) mb.node(t.act, {"g"}, {"y"});
    mb.output("y");
    const Dims a_shape{2, t.k};
    Model m = check_backends_agree(mb, a_shape, t.lowered ? "DnnlGemm" : "");
    CHECK((op_counts(m.graph())["DnnlGemm"] == 1) == t.lowered);
  }
}

TEST_CASE("a conv's residual Sum shares the output buffer only when nothing reads it later") {
  std::mt19937 rng(4);
  for (const bool read_later : {false, true}) {
    CAPTURE(read_later);
    ModelBuilder mb;
    mb.input("x", {-1, 8, 6, 6});
    mb.init("W0", rand_tensor({8, 8, 3, 3}, rng, -0.3f, 0.3f));
    mb.init("W1", rand_tensor({8, 8, 3, 3}, rng, -0.3f, 0.3f));
    auto pads = [](onnx::NodeProto& n) { ModelBuilder::attr_ints(n, "pads", {1, 1, 1, 1}); };
    pads(mb.node("Conv", {"x", "W0"}, {"r"}, "c0"));  // r: the residual, in the arena
    pads(mb.node("Conv", {"x", "W1"}, {"c"}, "c1"));  // (conv(r) + r could not share)
    mb.node("Add", {"c", "r"}, {"s"});
    mb.node("Relu", {"s"}, {"y"});
    if (read_later) {
      mb.node("Mul", {"y", "r"}, {"z"});  // r is still needed after the fused conv
      mb.output("z");
    } else {
      mb.output("y");
    }
    Model m = check_backends_agree(mb, {2, 8, 6, 6}, "NhwcConv");
    const auto plan = m.plan({{2, 8, 6, 6}});
    const Graph& g = m.graph();
    const Node* fused = nullptr;
    for (const Node& n : g.nodes)
      if (n.op_type == "NhwcConv" && n.inputs.size() > 3 && n.inputs[3] >= 0) fused = &n;
    REQUIRE(fused);
    const int64_t sum_at = plan->offset[size_t(fused->inputs[3])];
    const int64_t out_at = plan->offset[size_t(fused->outputs[0])];
    CHECK(sum_at >= 0);
    CHECK((sum_at == out_at) == !read_later);
  }
}

TEST_CASE("reordered weights are shared between plans that want the same layout") {
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  std::mt19937 rng(2);
  const Tensor w = rand_tensor({32, 16, 3, 3}, rng);
  const dnnl::memory::desc user({32, 16, 3, 3}, dt::f32, tag::oihw);
  const dnnl::memory::desc blocked({32, 16, 3, 3}, dt::f32, tag::OIhw16i16o);
  const dnnl::memory::desc other({32, 16, 3, 3}, dt::f32, tag::ohwi);
  auto a = onednn::shared_weights(w, user, blocked);
  auto b = onednn::shared_weights(w, user, blocked);
  auto c = onednn::shared_weights(w, user, other);
  CHECK(a.get() == b.get());
  CHECK(a.get() != c.get());
  // ohwi holds w transposed: element (o, i, h, k) at ((o * 3 + h) * 3 + k) * 16 + i.
  const float* p = static_cast<const float*>(c->get_data_handle());
  CHECK(p[((5 * 3 + 1) * 3 + 2) * 16 + 7] == w.data<float>()[((5 * 16 + 7) * 3 + 1) * 3 + 2]);
  // Once no plan holds it, the copy is freed and the next request builds a new one.
  a.reset();
  b.reset();
  auto d = onednn::shared_weights(w, user, blocked);
  CHECK(d.use_count() == 1);
}
