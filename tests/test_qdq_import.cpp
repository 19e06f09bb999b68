// The import-qdq pass on small generated QDQ graphs: which patterns become integer ops, which must
// stay float, and that the integer graph computes what the QDQ graph defines (the same model run
// with the pass switched off, i.e. reference QuantizeLinear / DequantizeLinear around float ops).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "engine/engine.h"
#include "frontend/onnx_writer.h"
#include "frontend/qdq_export.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace engine::test {
namespace {

// ONNX element types.
constexpr int kU8 = 2, kI8 = 3;

// Int8 weights in [-2^(bits-1), 2^(bits-1) - 1].
Tensor random_i8(Dims d, uint64_t seed, int bits = 8) {
  Tensor t(DType::I8, d);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = int8_t(u(rng));
  return t;
}

// A ModelBuilder with QDQ helpers.
class QdqBuilder : public ModelBuilder {
 public:
  // Q then DQ of `in` with one scale / uint8 zero point; an integer Clip [0, clip_max] between
  // them when clip_max < 255. Returns the DQ output name.
  std::string qdq(const std::string& in, const std::string& base, float s, uint8_t zp,
                  int clip_max = 255) {
    init(base + ".s", Tensor::scalar<float>(s));
    init(base + ".z", Tensor::scalar<uint8_t>(zp));
    node("QuantizeLinear", {in, base + ".s", base + ".z"}, {base + ".q"}, base + ".Q");
    std::string q = base + ".q";
    if (clip_max < 255) {
      init(base + ".lo", Tensor::scalar<uint8_t>(0));
      init(base + ".hi", Tensor::scalar<uint8_t>(uint8_t(clip_max)));
      node("Clip", {q, base + ".lo", base + ".hi"}, {base + ".qc"}, base + ".Clip");
      q = base + ".qc";
    }
    node("DequantizeLinear", {q, base + ".s", base + ".z"}, {base + ".dq"}, base + ".DQ");
    return base + ".dq";
  }
  // DQ of int8 weights with per-channel (axis) scales; returns the DQ output name.
  std::string weight(const std::string& base, const Tensor& w, const std::vector<float>& scales,
                     int axis = 0) {
    init(base + ".wq", w);
    init(base + ".ws", Tensor::from_vector<float>({int64_t(scales.size())}, scales));
    init(base + ".wz", Tensor(DType::I8, {int64_t(scales.size())}));
    auto& n = node("DequantizeLinear", {base + ".wq", base + ".ws", base + ".wz"}, {base + ".w"},
                   base + ".wDQ");
    attr_int(n, "axis", axis);
    return base + ".w";
  }
  // DQ of an int32 bias with per-channel scales.
  std::string bias(const std::string& base, const std::vector<int32_t>& b,
                   const std::vector<float>& scales) {
    init(base + ".bq", Tensor::from_vector<int32_t>({int64_t(b.size())}, b));
    init(base + ".bs", Tensor::from_vector<float>({int64_t(scales.size())}, scales));
    auto& n = node("DequantizeLinear", {base + ".bq", base + ".bs"}, {base + ".b"}, base + ".bDQ");
    attr_int(n, "axis", 0);
    return base + ".b";
  }
};

std::vector<float> channel_scales(int n, float base, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  std::vector<float> s(static_cast<size_t>(n));
  for (float& x : s) x = base * u(rng);
  return s;
}

Model load(const std::string& bytes, bool import, const std::string& backend = "reference") {
  ModelOptions o;
  o.backend = backend;
  if (!import) o.passes.disabled.insert("import-qdq");
  return Model::load_from_memory(bytes, o);
}

// Compares two dequantized outputs on the grid of `scale`: returns the share of values that
// differ and checks no value differs by more than `max_units` steps.
double differing_share(const Tensor& want, const Tensor& got, float scale, int max_units) {
  REQUIRE(want.shape() == got.shape());
  int64_t differ = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = std::abs(double(want.data<float>()[i]) - double(got.data<float>()[i]));
    const double units = d / double(scale);
    CHECK_MESSAGE(units <= max_units + 1e-3, "value ", i, ": ", want.data<float>()[i], " vs ",
                  got.data<float>()[i]);
    differ += units > 1e-3;
  }
  return double(differ) / double(want.numel());
}

// x[N,4,6,6] -> Q/DQ -> conv 3x3 (4-bit weights, int32 bias) -> Relu -> Q + Clip[0,15] (4-bit)
// -> DQ -> Add(input branch) -> Relu -> Q/DQ -> MaxPool -> Q/DQ (same params) -> {Sigmoid, conv
// 1x1 with a float bias -> Clip(-1, 2)} -> Q/DQ -> Concat -> Q/DQ -> Mul by itself -> Q/DQ ->
// GlobalAveragePool
// -> Q/DQ -> Flatten -> Q/DQ (same) -> Gemm (per-channel weights) -> Q/DQ -> y
std::string qdq_cnn() {
  QdqBuilder b;
  b.input("x", {-1, 4, 6, 6});
  b.output("y");
  const float sx = 0.02f;
  const std::string x = b.qdq("x", "in", sx, 128);
  // conv1: 4 -> 4, 4-bit weights, bias in the accumulator's scale.
  const std::vector<float> sw1 = channel_scales(4, 0.05f, 1);
  std::vector<float> sb1;
  for (float s : sw1) sb1.push_back(sx * s);
  auto& c1 = b.node("Conv",
                    {x, b.weight("conv1", random_i8({4, 4, 3, 3}, 2, 4), sw1),
                     b.bias("conv1", {100, -50, 7, 0}, sb1)},
                    {"c1"}, "conv1");
  ModelBuilder::attr_ints(c1, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  const std::string a1 = b.qdq("r1", "act1", 0.2f, 0, 15);
  // Residual add with the input branch, then Relu.
  b.node("Add", {a1, x}, {"s"}, "add");
  b.node("Relu", {"s"}, {"sr"}, "add_relu");
  const std::string a2 = b.qdq("sr", "act2", 0.025f, 10);
  auto& mp = b.node("MaxPool", {a2}, {"p"}, "pool");
  ModelBuilder::attr_ints(mp, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  const std::string a3 = b.qdq("p", "act2p", 0.025f, 10);  // same parameters: MaxPool on integers
  b.node("Sigmoid", {a3}, {"sg"}, "sigmoid");
  const std::string a4 = b.qdq("sg", "act3", 1.0f / 256, 0);
  // conv2 (1x1, 8-bit weights, float bias) on the pooled values.
  const std::vector<float> sw2 = channel_scales(4, 0.01f, 3);
  b.init("conv2.bf", random_tensor({4}, 4, 0.05f));
  b.node("Conv", {a3, b.weight("conv2", random_i8({4, 4, 1, 1}, 5), sw2), "conv2.bf"}, {"c2"},
         "conv2");
  b.init("clip.lo", Tensor::scalar<float>(-1.0f));
  b.init("clip.hi", Tensor::scalar<float>(2.0f));
  b.node("Clip", {"c2", "clip.lo", "clip.hi"}, {"c2c"}, "clip");
  const std::string a5 = b.qdq("c2c", "act4", 0.05f, 120);
  auto& cat = b.node("Concat", {a4, a5}, {"cat"}, "concat");
  ModelBuilder::attr_int(cat, "axis", 1);
  const std::string a6 = b.qdq("cat", "act5", 0.05f, 128);
  b.node("Mul", {a6, a6}, {"m"}, "mul");
  const std::string a7 = b.qdq("m", "act6", 0.16f, 0);
  b.node("GlobalAveragePool", {a7}, {"g"}, "gap");
  const std::string a8 = b.qdq("g", "act7", 0.1f, 0);
  auto& fl = b.node("Flatten", {a8}, {"f"}, "flatten");
  ModelBuilder::attr_int(fl, "axis", 1);
  const std::string a9 = b.qdq("f", "act7f", 0.1f, 0);
  const std::vector<float> swf = channel_scales(3, 0.02f, 6);
  std::vector<float> sbf;
  for (float s : swf) sbf.push_back(0.1f * s);
  auto& fc = b.node(
      "Gemm", {a9, b.weight("fc", random_i8({3, 8}, 7), swf), b.bias("fc", {10, -20, 30}, sbf)},
      {"fc"}, "fc");
  ModelBuilder::attr_int(fc, "transB", 1);
  b.init("out.s", Tensor::scalar<float>(0.03f));
  b.init("out.z", Tensor::scalar<uint8_t>(128));
  b.node("QuantizeLinear", {"fc", "out.s", "out.z"}, {"out.q"}, "out.Q");
  b.node("DequantizeLinear", {"out.q", "out.s", "out.z"}, {"y"}, "out.DQ");
  return b.bytes();
}

// x[N,C,H,H] -> Q/DQ -> conv kxk (pad k/2, per-channel weights, bias) -> [Relu] -> Q/DQ ->
// Add(conv, residual) (or Add(residual, conv)) -> [Relu] -> Q/DQ -> y; the residual is the graph
// input r[N,M,H,H] through its own Q/DQ and a max pool. `conv_also_out`: the conv's DQ output is a
// graph output too (a second reader of the conv's integers). `group`: C for a depthwise conv (M ==
// C).
std::string qdq_conv_add(int C, int M, int H, int k, bool conv_first, bool relu,
                         bool conv_also_out = false, int group = 1) {
  QdqBuilder b;
  b.input("x", {-1, C, H, H});
  b.input("r", {-1, M, H, H});
  b.output("y");
  if (conv_also_out) b.output("act.dq");
  const float sx = 0.02f;
  const std::string x = b.qdq("x", "in", sx, 128);
  // The residual: a 3x3 max pool on integers (an NHWC op that is no conv).
  auto& mp = b.node("MaxPool", {b.qdq("r", "res", 0.03f, 120)}, {"rp"}, "res_pool");
  ModelBuilder::attr_ints(mp, "kernel_shape", {3, 3});
  ModelBuilder::attr_ints(mp, "pads", {1, 1, 1, 1});
  const std::string r = b.qdq("rp", "resp", 0.03f, 120);
  const std::vector<float> sw = channel_scales(M, 0.3f / float(C / group * k * k), 9);
  std::vector<float> sb;
  std::vector<int32_t> bias;
  for (int m = 0; m < M; ++m) sb.push_back(sx * sw[size_t(m)]), bias.push_back(m * 37 % 200 - 100);
  auto& conv = b.node(
      "Conv",
      {x, b.weight("conv", random_i8({M, C / group, k, k}, 10), sw), b.bias("conv", bias, sb)},
      {"c"}, "conv");
  ModelBuilder::attr_ints(conv, "pads", {k / 2, k / 2, k / 2, k / 2});
  ModelBuilder::attr_int(conv, "group", group);
  std::string c = "c";
  if (relu) {
    b.node("Relu", {"c"}, {"cr"}, "conv_relu");
    c = "cr";
  }
  const std::string a = b.qdq(c, "act", 0.04f, relu ? 0 : 100);
  b.node("Add", conv_first ? std::vector<std::string>{a, r} : std::vector<std::string>{r, a}, {"s"},
         "add");
  std::string sum = "s";
  if (relu) {
    b.node("Relu", {"s"}, {"sr"}, "add_relu");
    sum = "sr";
  }
  b.init("out.s", Tensor::scalar<float>(0.05f));
  b.init("out.z", Tensor::scalar<uint8_t>(90));
  b.node("QuantizeLinear", {sum, "out.s", "out.z"}, {"out.q"}, "out.Q");
  b.node("DequantizeLinear", {"out.q", "out.s", "out.z"}, {"y"}, "out.DQ");
  return b.bytes();
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw(), b.raw(), size_t(a.nbytes())) == 0;
}

}  // namespace

TEST_CASE("import-qdq: every op of a QDQ CNN becomes an integer op") {
  Model m = load(qdq_cnn(), true);
  auto c = op_counts(m.graph());
  CAPTURE(c);
  CHECK(c["QConv"] == 2);
  CHECK(c["QAdd"] == 1);
  CHECK(c["QMul"] == 1);
  CHECK(c["QConcat"] == 1);
  CHECK(c["QLut"] == 1);  // the Sigmoid
  CHECK(c["QGlobalAveragePool"] == 1);
  CHECK(c["QGemm"] == 1);
  CHECK(c["MaxPool"] == 1);
  CHECK(c["Flatten"] == 1);
  // Only the graph input is quantized and only the graph output dequantized.
  CHECK(c["QuantizeLinear"] == 1);
  CHECK(c["DequantizeLinear"] == 1);
  for (const char* op :
       {"Conv", "Gemm", "Add", "Mul", "Concat", "Sigmoid", "Relu", "Clip", "GlobalAveragePool"})
    CHECK_MESSAGE(c[op] == 0, op);
  // The 4-bit activation and weights carry their bit width.
  const Graph& g = m.graph();
  CHECK(g.value(g.find_value("act1.qc")).quant.bits == 4);
  CHECK(g.value(g.find_value("act1.qc")).quant.scale == std::vector<float>{0.2f});
  CHECK(g.value(g.find_value("conv1.wq")).quant.bits == 4);
  CHECK(g.value(g.find_value("conv1.wq")).quant.axis == 0);
  CHECK(g.value(g.find_value("conv2.wq")).quant.bits == 8);
  for (const Node& n : g.nodes)
    if (n.op_type == "QConv" && n.name == "conv1") {
      CHECK(n.attrs.get_int("out_min") == 0);   // Relu: Q(0) = zero point 0
      CHECK(n.attrs.get_int("out_max") == 15);  // the integer Clip
      CHECK(n.attrs.get_string("requant") == "float");
    } else if (n.op_type == "QConv") {
      CHECK(n.attrs.get_int("out_min") == 100);  // Clip(-1, 2): Q(-1) = 120 - 20
      CHECK(n.attrs.get_int("out_max") == 160);  // Q(2) = 120 + 40
    } else if (n.op_type == "QAdd") {
      CHECK(n.attrs.get_int("out_min") == 10);  // Relu: Q(0) = the zero point
      CHECK(n.attrs.get_int("out_max") == 255);
    }
}

TEST_CASE("import-qdq: the integer graph computes what the QDQ graph defines") {
  const std::string bytes = qdq_cnn();
  Model qdq = load(bytes, false);  // reference Q / DQ around float ops
  for (const std::string backend : {"reference", "onednn"}) {
    CAPTURE(backend);
    Model integer = load(bytes, true, backend);
    for (uint64_t seed : {11u, 12u, 13u}) {
      Tensor x = random_tensor({8, 4, 6, 6}, seed, 1.0f);
      Tensor want = qdq.run({x})[0], got = integer.run({x})[0];
      // Float rounding ties may move a value by one step somewhere in the chain.
      std::set<float> distinct(want.data<float>(), want.data<float>() + want.numel());
      CHECK(distinct.size() >= 16);  // not saturated: 24 outputs
      const double share = differing_share(want, got, 0.03f, 3);
      MESSAGE("outputs one or more steps apart: ", share * 100, " %");
      CHECK(share <= 0.1);
    }
  }
}

TEST_CASE("import-qdq: int8 activations keep their negative range") {
  // x -> Q(int8, zp 3) -> DQ -> conv -> Q(int8, zp -10) -> DQ -> Q(DQ) to zp 5 -> DQ -> y
  QdqBuilder b;
  b.input("x", {2, 3, 5, 5});
  b.output("y");
  auto qdq_i8 = [&](const std::string& in, const std::string& base, float s, int8_t zp) {
    b.init(base + ".s", Tensor::scalar<float>(s));
    b.init(base + ".z", Tensor::scalar<int8_t>(zp));
    b.node("QuantizeLinear", {in, base + ".s", base + ".z"}, {base + ".q"});
    b.node("DequantizeLinear", {base + ".q", base + ".s", base + ".z"}, {base + ".dq"});
    return base + ".dq";
  };
  const std::string x = qdq_i8("x", "in", 0.02f, 3);
  b.node("Conv", {x, b.weight("w", random_i8({4, 3, 3, 3}, 8), channel_scales(4, 0.01f, 9))}, {"c"},
         "conv");
  const std::string c = qdq_i8("c", "out", 0.01f, -10);
  b.node("Identity", {qdq_i8(c, "re", 0.012f, 5)}, {"y"});
  Model m = load(b.bytes(), true);
  auto ops = op_counts(m.graph());
  CHECK(ops["QConv"] == 1);
  CHECK(ops["QLut"] == 1);
  Tensor x_in = random_tensor({2, 3, 5, 5}, 10);
  Tensor want = load(b.bytes(), false).run({x_in})[0], got = m.run({x_in})[0];
  int negative = 0;
  for (int64_t i = 0; i < want.numel(); ++i) negative += want.data<float>()[i] < 0;
  CHECK(negative > want.numel() / 4);
  CHECK(differing_share(want, got, 0.012f, 0) == 0.0);
}

TEST_CASE("import-qdq: patterns that must stay float") {
  SUBCASE("conv output read by Q and by a float op") {
    QdqBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.output("y");
    b.output("c");
    const std::string x = b.qdq("x", "in", 0.05f, 128);
    b.node("Conv", {x, b.weight("w", random_i8({2, 2, 1, 1}, 1), {0.1f, 0.2f})}, {"c"}, "conv");
    b.qdq("c", "out", 0.1f, 128);
    b.node("Identity", {"out.dq"}, {"y"});
    auto c = op_counts(load(b.bytes(), true).graph());
    CHECK(c["Conv"] == 1);
    CHECK(c["QConv"] == 0);
  }
  SUBCASE("activation quantized per channel") {
    QdqBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.output("y");
    b.init("s", Tensor::from_vector<float>({2}, {0.1f, 0.2f}));
    b.init("z", Tensor(DType::U8, {2}));
    ModelBuilder::attr_int(b.node("QuantizeLinear", {"x", "s", "z"}, {"q"}), "axis", 1);
    auto& dq = b.node("DequantizeLinear", {"q", "s", "z"}, {"xd"});
    ModelBuilder::attr_int(dq, "axis", 1);
    b.node("Conv", {"xd", b.weight("w", random_i8({2, 2, 1, 1}, 1), {0.1f, 0.2f})}, {"c"}, "conv");
    b.qdq("c", "out", 0.1f, 128);
    b.node("Identity", {"out.dq"}, {"y"});
    auto c = op_counts(load(b.bytes(), true).graph());
    CHECK(c["Conv"] == 1);
  }
  SUBCASE("MaxPool between Q / DQ with different parameters, Tanh without a Q after it") {
    QdqBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.output("y");
    const std::string x = b.qdq("x", "in", 0.05f, 128);
    auto& mp = b.node("MaxPool", {x}, {"p"}, "pool");
    ModelBuilder::attr_ints(mp, "kernel_shape", {2, 2});
    const std::string p = b.qdq("p", "out", 0.06f, 128);
    b.node("Tanh", {p}, {"y"}, "tanh");
    Model m = load(b.bytes(), true);
    auto c = op_counts(m.graph());
    CHECK(c["MaxPool"] == 1);
    CHECK(c["Tanh"] == 1);
    CHECK(c["QLut"] == 0);
    CHECK(c["DequantizeLinear"] == 2);
    Tensor x_in = random_tensor({1, 2, 4, 4}, 3);
    Tensor want = load(b.bytes(), false).run({x_in})[0], got = m.run({x_in})[0];
    CHECK(differing_share(want, got, 1e-6f, 0) == 0.0);
  }
}

TEST_CASE("import-qdq: Q(DQ(x)) is x with the same parameters and a table with others") {
  for (const float s2 : {0.05f, 0.08f}) {
    CAPTURE(s2);
    QdqBuilder b;
    b.input("x", {2, 3, 5});
    b.output("y");
    const std::string x = b.qdq("x", "in", 0.05f, 128);
    auto& t = b.node("Transpose", {x}, {"t"}, "transpose");
    ModelBuilder::attr_ints(t, "perm", {0, 2, 1});
    const std::string tq = b.qdq("t", "mid", 0.05f, 128);  // same: Transpose on integers
    b.qdq(tq, "out", s2, s2 == 0.05f ? 128 : 100);         // Q(DQ) with the same or other params
    b.node("Identity", {"out.dq"}, {"y"});
    Model m = load(b.bytes(), true);
    auto c = op_counts(m.graph());
    CHECK(c["Transpose"] == 1);
    CHECK(c["QLut"] == (s2 == 0.05f ? 0 : 1));
    Tensor x_in = random_tensor({2, 3, 5}, 4, 3.0f);
    Tensor want = load(b.bytes(), false).run({x_in})[0], got = m.run({x_in})[0];
    CHECK(differing_share(want, got, s2, 0) == 0.0);
  }
}

TEST_CASE("QDQ export: import -> export -> import gives the same integers; no engine ops") {
  const std::string bytes = qdq_cnn();
  Model qdq = load(bytes, false);
  Model imported = load(bytes, true);
  const Graph exported = to_qdq(imported.ir());
  std::map<std::string, int> ops;
  for (const Node& n : exported.nodes) {
    CHECK_MESSAGE(n.domain.empty(), n.label());
    ops[n.op_type]++;
  }
  CHECK(ops["Conv"] == 2);
  CHECK(ops["Gemm"] == 1);
  CHECK(ops["Gather"] == 1);  // the Sigmoid's table
  CHECK(ops["Clip"] == 2);    // 4-bit activation, Clip(-1, 2) = [100, 160]: integer Clip after Q
  CHECK(ops["Relu"] == 1);    // the Add's clamp [zero point, 255]
  const std::string again = save_onnx_bytes(exported);
  Model reimported = load(again, true), simulated = load(again, false);
  auto c = op_counts(reimported.graph());
  CHECK(c["QConv"] == 2);
  CHECK(c["Gather"] == 1);  // the table lookup runs as it was written
  for (uint64_t seed : {21u, 22u}) {
    Tensor x = random_tensor({8, 4, 6, 6}, seed, 1.0f);
    Tensor want = qdq.run({x})[0];
    CHECK(differing_share(want, reimported.run({x})[0], 0.03f, 0) == 0.0);
    CHECK(differing_share(want, simulated.run({x})[0], 0.03f, 0) == 0.0);
  }
}

TEST_CASE(
    "fuse-qconv-qadd: the conv adds the residual after requantizing, same bytes as the two "
    "nodes") {
  struct Case {
    int C, M, H, k;
    bool conv_first, relu;
  };
  // 3x3 indirect conv; a 1x1 conv with 256 channels on 4x4 (few row blocks: the column panels are
  // split between threads); odd sizes through im2col-free 3x3 with 24 channels.
  for (const Case t : {Case{8, 8, 6, 3, true, true}, Case{16, 256, 4, 1, false, false},
                       Case{4, 24, 9, 3, false, true}}) {
    CAPTURE(t.M);
    const std::string bytes = qdq_conv_add(t.C, t.M, t.H, t.k, t.conv_first, t.relu);
    Model ref = load(bytes, true);  // reference kernels: QConv, then QAdd
    Model fused = load(bytes, true, "onednn");
    ModelOptions o;
    o.backend = "onednn";
    o.passes.disabled.insert("fuse-qconv-qadd");
    Model unfused = Model::load_from_memory(bytes, o);
    auto cf = op_counts(fused.graph()), cu = op_counts(unfused.graph());
    CHECK(cf["QAdd"] == 0);
    CHECK(cu["QAdd"] == 1);
    for (const Node& n : fused.graph().nodes)
      if (n.op_type == "NhwcQConv") {
        REQUIRE(n.inputs.size() == 14);
        CHECK(n.inputs[12] >= 0);
        CHECK(n.attrs.get_int("add_out_min", 0) == (t.relu ? 90 : 0));  // Relu: the zero point
      }
    for (int batch : {1, 3})
      for (int threads : {1, 2}) {
        CAPTURE(batch);
        CAPTURE(threads);
        const Tensor x = random_tensor({batch, t.C, t.H, t.H}, 30 + uint64_t(batch), 1.0f);
        const Tensor r = random_tensor({batch, t.M, t.H, t.H}, 40 + uint64_t(batch), 2.0f);
        RunOptions ro;
        ro.threads = threads;
        const std::vector<Tensor> in{x, r};
        const Tensor want = ref.run(in, ro)[0];
        std::set<float> distinct(want.data<float>(), want.data<float>() + want.numel());
        CHECK(distinct.size() >= 20);  // neither saturated nor constant
        CHECK(same_bytes(want, fused.run(in, ro)[0]));
        CHECK(same_bytes(want, unfused.run(in, ro)[0]));
      }
  }
}

TEST_CASE("fuse-qconv-qadd: what must not fuse") {
  ModelOptions blocks;
  blocks.backend = "onednn";
  blocks.passes.fuse = "blocks";
  auto qadds = [](const Model& m) { return op_counts(m.graph())["QAdd"]; };
  // The conv's integers have a second reader (a graph output).
  CHECK(qadds(load(qdq_conv_add(8, 8, 6, 3, true, false, true), true, "onednn")) == 1);
  // A depthwise conv.
  CHECK(qadds(load(qdq_conv_add(8, 8, 6, 3, true, false, false, 8), true, "onednn")) == 1);
  // Fusion preset "blocks".
  CHECK(qadds(Model::load_from_memory(qdq_conv_add(8, 8, 6, 3, true, false), blocks)) == 1);
  // The fusing case itself (so the three above fail for their own reason).
  CHECK(qadds(load(qdq_conv_add(8, 8, 6, 3, true, false), true, "onednn")) == 0);
}

}  // namespace engine::test
