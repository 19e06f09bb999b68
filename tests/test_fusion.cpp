// Fusion passes and the fused ops (FusedConv, FusedGemm): every pattern gives the expected fused
// graph and the same outputs as the unfused graph (fuse "none") on random inputs; patterns that
// must not fuse stay unfused. Suite "models": the fashion models with fuse none vs all.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <random>

#include "engine/engine.h"
#include "frontend/npy.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "ops/ops.h"
#include "test_data.h"

using namespace engine;
using engine::test::ModelBuilder;
using engine::test::rand_tensor;

namespace {

// Small graphs: weights and BN parameters are random initializers named after the node.
struct Net {
  explicit Net(int opset = 13) : mb(opset), rng(7) {}
  ModelBuilder mb;
  std::mt19937 rng;

  onnx::NodeProto& conv(const std::string& x, const std::string& y, int64_t C, int64_t M, int64_t k,
                        int64_t pad = 0, int64_t group = 1, bool bias = true) {
    mb.init(y + "_W", rand_tensor({M, C / group, k, k}, rng));
    std::vector<std::string> in{x, y + "_W"};
    if (bias) {
      mb.init(y + "_B", rand_tensor({M}, rng));
      in.push_back(y + "_B");
    }
    auto& n = mb.node("Conv", in, {y}, y + "_conv");
    if (pad) ModelBuilder::attr_ints(n, "pads", {pad, pad, pad, pad});
    if (group != 1) ModelBuilder::attr_int(n, "group", group);
    return n;
  }
  void bn_params(const std::string& y, int64_t C) {
    mb.init(y + "_s", rand_tensor({C}, rng, 0.5f, 1.5f));
    mb.init(y + "_b", rand_tensor({C}, rng, -0.5f, 0.5f));
    mb.init(y + "_m", rand_tensor({C}, rng, -0.5f, 0.5f));
    mb.init(y + "_v", rand_tensor({C}, rng, 0.5f, 2.0f));
  }
  onnx::NodeProto& bn(const std::string& x, const std::string& y, int64_t C) {
    bn_params(y, C);
    auto& n =
        mb.node("BatchNormalization", {x, y + "_s", y + "_b", y + "_m", y + "_v"}, {y}, y + "_bn");
    ModelBuilder::attr_float(n, "epsilon", 1e-3f);
    return n;
  }
};

// On the reference backend, so graph() shows the fusion result (no layout lowering).
Model load(const ModelBuilder& mb, const std::string& fuse) {
  ModelOptions o;
  o.backend = "reference";
  o.passes.fuse = fuse;
  return Model::load_from_memory(mb.bytes(), o);
}

std::vector<std::string> op_types(const Model& m) {
  std::vector<std::string> v;
  for (const Node& n : m.graph().nodes) v.push_back(n.op_type);
  return v;
}

int count(const Model& m, const std::string& op) {
  int c = 0;
  for (const Node& n : m.graph().nodes) c += n.op_type == op;
  return c;
}

const Node& only_node(const Model& m, const std::string& op) {
  const Node* found = nullptr;
  for (const Node& n : m.graph().nodes)
    if (n.op_type == op) {
      REQUIRE_MESSAGE(!found, "more than one ", op);
      found = &n;
    }
  REQUIRE_MESSAGE(found, "no ", op, " node");
  return *found;
}

void check_same(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    REQUIRE(got[k].shape() == want[k].shape());
    int bad = 0;
    for (int64_t i = 0; i < want[k].numel(); ++i) {
      const float a = got[k].data<float>()[i], b = want[k].data<float>()[i];
      if (!(std::abs(a - b) <= 1e-5f + 1e-4f * std::abs(b))) ++bad;
    }
    CHECK_MESSAGE(bad == 0, bad, " of ", want[k].numel(), " values of output ", k, " differ");
  }
}

// Loads the graph with fuse none and with `fuse`, runs both on the same random inputs (dynamic
// dims set to `batch`) and checks the outputs agree. Returns the fused model.
Model check_fused_matches(const ModelBuilder& mb, const std::string& fuse = "all",
                          int64_t batch = 2) {
  Model ref = load(mb, "none");
  Model fused = load(mb, fuse);
  std::mt19937 rng(123);
  std::vector<Tensor> in;
  for (const Dims& d : ref.concrete_input_shapes(batch)) in.push_back(rand_tensor(d, rng));
  check_same(fused.run(in), ref.run(in));
  return fused;
}

}  // namespace

TEST_CASE("FusedConv op: conv + bias + Sum then the activation (naive 1x1 values)") {
  const OpRegistry& reg = reference_registry();
  // X [1,2,1,2], W [2,2,1,1]: y[m,p] = sum_c W[m,c] x[c,p] + B[m] + Sum[m,p], then Clip(-1, 2).
  const Tensor X = Tensor::from_vector<float>({1, 2, 1, 2}, {1, 2, 3, 4});
  const Tensor W = Tensor::from_vector<float>({2, 2, 1, 1}, {1, 1, -1, 0.5f});
  const Tensor B = Tensor::from_vector<float>({2}, {0.5f, -1});
  const Tensor S = Tensor::from_vector<float>({1, 2, 1, 2}, {0, -10, 1, 0.25f});
  test::NodeSpec spec{"FusedConv", {}, 1, 1, "engine"};
  spec.attrs.set("activation", std::string("Clip"));
  spec.attrs.set("act_alpha", -1.0f);
  spec.attrs.set("act_beta", 2.0f);
  // m0: 1+3+0.5 = 4.5, 2+4+0.5 = 6.5; + Sum -> 4.5, -3.5 -> clip 2, -1
  // m1: -1+1.5-1 = -0.5, -2+2-1 = -1; + Sum -> 0.5, -0.75
  auto out = test::run_node(reg, spec, {X, W, B, S});
  test::check_close(out[0], {2, -1, 0.5f, -0.75f}, {1, 2, 1, 2});
  spec.attrs.set("activation", std::string("LeakyRelu"));
  spec.attrs.erase("act_alpha");  // default alpha 0.01
  out = test::run_node(reg, spec, {X, W, B, S});
  test::check_close(out[0], {4.5f, -0.035f, 0.5f, -0.0075f}, {1, 2, 1, 2});

  spec.attrs.set("activation", std::string("Gelu"));
  CHECK_THROWS_WITH_AS(test::run_node(reg, spec, {X, W, B, S}),
                       doctest::Contains("activation='Gelu' is not one of"), Error);
  spec.attrs.set("activation", std::string("Relu"));
  const Tensor bad_sum(DType::F32, {1, 2, 1, 1});
  CHECK_THROWS_WITH_AS(test::run_node(reg, spec, {X, W, B, bad_sum}),
                       doctest::Contains("Sum (input 3) must have exactly the output shape"),
                       Error);
  Node n;
  n.op_type = "FusedConv";
  n.attrs.set("activation", std::string("relu"));
  CHECK_THROWS_WITH_AS(reg.find("engine", "FusedConv")->validate(n),
                       doctest::Contains("activation='relu'"), Error);
}

TEST_CASE("FusedGemm op: gemm then the activation (hand values)") {
  const OpRegistry& reg = reference_registry();
  const Tensor A = Tensor::from_vector<float>({1, 2}, {1, -2});
  const Tensor B = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  const Tensor C = Tensor::from_vector<float>({2}, {1, 20});
  test::NodeSpec spec{"FusedGemm", {}, 1, 1, "engine"};
  spec.attrs.set("activation", std::string("HardSigmoid"));
  spec.attrs.set("act_alpha", 0.1f);
  spec.attrs.set("act_beta", 0.25f);
  // A B + C = [1-6+1, 2-8+20] = [-4, 14]; 0.1 x + 0.25 -> -0.15 -> 0, 1.65 -> 1
  auto out = test::run_node(reg, spec, {A, B, C});
  test::check_close(out[0], {0, 1}, {1, 2});
  spec.attrs.set("activation", std::string("SiLU"));
  out = test::run_node(reg, spec, {A, B, C});
  test::check_close(out[0], {float(-4 / (1 + std::exp(4.0))), float(14 / (1 + std::exp(-14.0)))},
                    {1, 2});
}

TEST_CASE("fusion presets: unknown names are rejected; the passes declare their levels") {
  Net net;
  net.mb.input("x", {1, 2, 4, 4});
  net.conv("x", "c", 2, 3, 3, 1);
  net.mb.node("Relu", {"c"}, {"y"});
  net.mb.output("y");
  CHECK_THROWS_WITH_AS(
      load(net.mb, "full"),
      doctest::Contains("unknown fusion preset 'full' (expected none, blocks or all)"), Error);
  std::map<std::string, int> levels;
  for (const auto& p : all_passes()) {
    levels[p->name()] = p->fuse_level();
    CHECK(p->is_fusion() == (p->fuse_level() > 0));
  }
  CHECK(levels["fold-batchnorm"] == 1);
  CHECK(levels["fuse-conv-activation"] == 1);
  CHECK(levels["fuse-gemm-activation"] == 1);
  CHECK(levels["fuse-conv-add"] == 2);
  CHECK(levels["fold-pad-into-conv"] == 2);
  CHECK(levels["merge-reshapes"] == 2);
  CHECK(levels["fold-constants"] == 0);
  // Disabling one fusion by name still works under "all".
  ModelOptions o;
  o.backend = "reference";
  o.passes.disabled.insert("fuse-conv-activation");
  Model m = Model::load_from_memory(net.mb.bytes(), o);
  CHECK(op_types(m) == std::vector<std::string>{"Conv", "Relu"});
}

TEST_CASE("Conv + BatchNormalization + Relu -> one FusedConv (Relu); presets none/blocks") {
  Net net;
  net.mb.input("x", {-1, 3, 6, 6});
  net.conv("x", "c", 3, 4, 3, 1);
  net.bn("c", "n", 4);
  net.mb.node("Relu", {"n"}, {"y"}, "relu");
  net.mb.output("y");
  Model none = load(net.mb, "none");
  CHECK(op_types(none) == std::vector<std::string>{"Conv", "BatchNormalization", "Relu"});
  for (const char* preset : {"blocks", "all"}) {
    CAPTURE(preset);
    Model m = check_fused_matches(net.mb, preset, 3);
    CHECK(op_types(m) == std::vector<std::string>{"FusedConv"});
    const Node& f = only_node(m, "FusedConv");
    CHECK(f.domain == "engine");
    CHECK(f.name == "c_conv");
    CHECK(f.attrs.get_string("activation") == "Relu");
    CHECK(m.graph().value(f.outputs[0]).name == "y");
  }
}

TEST_CASE("Conv without bias + BatchNormalization, and BN before an unpadded grouped Conv") {
  Net net;
  net.mb.input("x", {2, 4, 5, 5});
  net.bn("x", "pre", 4);                       // BN -> Conv (no pads, group 2): folded forwards
  net.conv("pre", "c", 4, 6, 3, 0, 2, false);  // no bias
  net.bn("c", "n", 6);                         // Conv -> BN
  net.mb.output("n");
  Model m = check_fused_matches(net.mb, "blocks");
  CHECK(op_types(m) == std::vector<std::string>{"Conv"});
  CHECK(m.graph().nodes[0].inputs.size() == 3);  // a bias appeared
}

TEST_CASE(
    "BatchNormalization is not folded into a padded Conv after it, nor with a variable "
    "parameter") {
  SUBCASE("padded conv after BN") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.bn("x", "pre", 2);
    net.conv("pre", "y", 2, 3, 3, 1);
    net.mb.output("y");
    Model m = check_fused_matches(net.mb);
    CHECK(count(m, "BatchNormalization") == 1);
  }
  SUBCASE("mean from a graph input") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.mb.input("mean", {2});
    net.conv("x", "c", 2, 2, 3, 1);
    net.bn_params("n", 2);
    net.mb.node("BatchNormalization", {"c", "n_s", "n_b", "mean", "n_v"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"Conv", "BatchNormalization"});
  }
}

TEST_CASE("Conv + each activation -> FusedConv with that activation") {
  struct Case {
    std::string op, want;
    int opset = 13;
  };
  for (const Case& c : {Case{"Relu", "Relu"}, Case{"Clip", "Clip"}, Case{"Clip6", "Clip", 6},
                        Case{"LeakyRelu", "LeakyRelu"}, Case{"Sigmoid", "Sigmoid"},
                        Case{"HardSigmoid", "HardSigmoid"}, Case{"HardSwish", "HardSwish", 14},
                        Case{"SiLU", "SiLU"}}) {
    CAPTURE(c.op);
    Net net(c.opset);
    net.mb.input("x", {-1, 2, 5, 5});
    net.conv("x", "c", 2, 3, 3, 1);
    if (c.op == "Clip") {
      net.mb.init("lo", Tensor::scalar<float>(-0.25f));
      net.mb.init("hi", Tensor::scalar<float>(0.5f));
      net.mb.node("Clip", {"c", "lo", "hi"}, {"y"});
    } else if (c.op == "Clip6") {
      auto& n = net.mb.node("Clip", {"c"}, {"y"});
      ModelBuilder::attr_float(n, "min", -0.25f);
      ModelBuilder::attr_float(n, "max", 0.5f);
    } else if (c.op == "LeakyRelu") {
      ModelBuilder::attr_float(net.mb.node("LeakyRelu", {"c"}, {"y"}), "alpha", 0.3f);
    } else if (c.op == "HardSigmoid") {
      auto& n = net.mb.node("HardSigmoid", {"c"}, {"y"});
      ModelBuilder::attr_float(n, "alpha", 0.3f);
      ModelBuilder::attr_float(n, "beta", 0.4f);
    } else if (c.op == "SiLU") {
      net.mb.node("Sigmoid", {"c"}, {"s"});
      net.mb.node("Mul", {"s", "c"}, {"y"});
    } else {
      net.mb.node(c.op, {"c"}, {"y"});
    }
    net.mb.output("y");
    Model m = check_fused_matches(net.mb, "blocks");
    REQUIRE(op_types(m) == std::vector<std::string>{"FusedConv"});
    const Node& f = m.graph().nodes[0];
    CHECK(f.attrs.get_string("activation") == c.want);
    if (c.want == "Clip") {
      CHECK(f.attrs.get_float("act_alpha") == -0.25f);
      CHECK(f.attrs.get_float("act_beta") == 0.5f);
    }
    if (c.op == "LeakyRelu") CHECK(f.attrs.get_float("act_alpha") == 0.3f);
  }
}

TEST_CASE("Conv + activation is not fused when the conv output has another reader") {
  SUBCASE("used twice") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.conv("x", "c", 2, 3, 3, 1);
    net.mb.node("Relu", {"c"}, {"y"});
    net.mb.node("Sigmoid", {"c"}, {"z"});
    net.mb.output("y");
    net.mb.output("z");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"Conv", "Relu", "Sigmoid"});
  }
  SUBCASE("conv output is a graph output") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.conv("x", "c", 2, 3, 3, 1);
    net.mb.node("Relu", {"c"}, {"y"});
    net.mb.output("y");
    net.mb.output("c");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"Conv", "Relu"});
  }
  SUBCASE("SiLU-like Mul with a third reader of the conv output") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.conv("x", "c", 2, 3, 3, 1);
    net.mb.node("Sigmoid", {"c"}, {"s"});
    net.mb.node("Mul", {"c", "s"}, {"y"});
    net.mb.node("Neg", {"c"}, {"z"});
    net.mb.output("y");
    net.mb.output("z");
    Model m = check_fused_matches(net.mb);
    CHECK(count(m, "FusedConv") == 0);
  }
}

TEST_CASE("Gemm + BatchNormalization + Relu -> FusedGemm; MatMul + Add + Sigmoid -> FusedGemm") {
  for (int tb : {0, 1}) {
    CAPTURE(tb);
    Net net;
    net.mb.input("a", {-1, 5});
    net.mb.init("B", rand_tensor(tb ? Dims{4, 5} : Dims{5, 4}, net.rng));
    net.mb.init("C", rand_tensor({1, 4}, net.rng));
    auto& g = net.mb.node("Gemm", {"a", "B", "C"}, {"g"}, "fc");
    ModelBuilder::attr_int(g, "transB", tb);
    ModelBuilder::attr_float(g, "alpha", 0.5f);
    ModelBuilder::attr_float(g, "beta", 2.0f);
    net.bn("g", "n", 4);
    net.mb.node("Relu", {"n"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb, "blocks", 3);
    CHECK(op_types(m) == std::vector<std::string>{"FusedGemm"});
    CHECK(m.graph().nodes[0].name == "fc");
    CHECK(m.graph().nodes[0].attrs.get_string("activation") == "Relu");
  }
  for (const Dims& bias_shape : {Dims{4}, Dims{1, 4}}) {
    Net net;
    net.mb.input("a", {-1, 5});
    net.mb.init("B", rand_tensor({5, 4}, net.rng));
    net.mb.init("bias", rand_tensor(bias_shape, net.rng));
    net.mb.node("MatMul", {"a", "B"}, {"mm"}, "fc");
    net.mb.node("Add", {"bias", "mm"}, {"s"});
    net.mb.node("Sigmoid", {"s"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb, "blocks");
    CHECK(op_types(m) == std::vector<std::string>{"FusedGemm"});
    CHECK(m.graph().nodes[0].attrs.get_string("activation") == "Sigmoid");
  }
  {  // a 3-D A is not a Gemm
    Net net;
    net.mb.input("a", {2, 3, 5});
    net.mb.init("B", rand_tensor({5, 4}, net.rng));
    net.mb.init("bias", rand_tensor({4}, net.rng));
    net.mb.node("MatMul", {"a", "B"}, {"mm"});
    net.mb.node("Add", {"mm", "bias"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"MatMul", "Add"});
  }
}

TEST_CASE("residual Conv + Add (or Sum) + Relu -> FusedConv with Sum (dynamic batch)") {
  for (const char* add_op : {"Add", "Sum"}) {
    CAPTURE(add_op);
    Net net;
    net.mb.input("x", {-1, 4, 6, 6});
    net.conv("x", "c1", 4, 4, 3, 1);
    net.mb.node("Relu", {"c1"}, {"r1"});
    net.conv("r1", "c2", 4, 4, 3, 1);
    net.mb.node(add_op, {"c2", "x"}, {"s"});
    net.mb.node("Relu", {"s"}, {"y"});
    net.mb.output("y");
    Model blocks = check_fused_matches(net.mb, "blocks");
    CHECK(op_types(blocks) == std::vector<std::string>{"FusedConv", "Conv", add_op, "Relu"});
    Model m = check_fused_matches(net.mb, "all", 3);
    REQUIRE(op_types(m) == std::vector<std::string>{"FusedConv", "FusedConv"});
    const Node& f = m.graph().nodes[1];
    CHECK(f.name == "c2_conv");
    REQUIRE(f.inputs.size() == 4);
    CHECK(m.graph().value(f.inputs[3]).name == "x");
    CHECK(f.attrs.get_string("activation") == "Relu");
    CHECK(m.graph().value(f.outputs[0]).name == "y");
  }
}

TEST_CASE("Add of two convs fuses the later one; Clip after the Add becomes the activation") {
  Net net;
  net.mb.input("x", {-1, 3, 6, 6});
  net.conv("x", "a", 3, 4, 3, 1);
  net.conv("x", "b", 3, 4, 1);
  net.mb.init("lo", Tensor::scalar<float>(0.0f));
  net.mb.init("hi", Tensor::scalar<float>(1.0f));
  net.mb.node("Add", {"b", "a"}, {"s"});
  net.mb.node("Clip", {"s", "lo", "hi"}, {"y"});
  net.mb.output("y");
  Model m = check_fused_matches(net.mb);
  REQUIRE(op_types(m) == std::vector<std::string>{"Conv", "FusedConv"});
  const Node& f = m.graph().nodes[1];
  CHECK(f.name == "b_conv");
  CHECK(m.graph().value(f.inputs[3]).name == "a");
  CHECK(f.attrs.get_string("activation") == "Clip");
}

TEST_CASE("conv + Add is not fused with a broadcast other side; Relu with another reader stays") {
  SUBCASE("broadcasting other side") {
    Net net;
    net.mb.input("x", {-1, 2, 5, 5});
    net.mb.input("z", {-1, 3, 1, 1});
    net.conv("x", "c", 2, 3, 3, 1);
    net.mb.node("Add", {"c", "z"}, {"s"});
    net.mb.node("Relu", {"s"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"Conv", "Add", "Relu"});
  }
  SUBCASE("other side differs only in the dynamic batch") {
    Net net;
    net.mb.input("x", {-1, 2, 5, 5});
    net.mb.init("z", rand_tensor({1, 3, 5, 5}, net.rng));
    net.conv("x", "c", 2, 3, 3, 1);
    net.mb.node("Add", {"c", "z"}, {"y"});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb, "all", 1);
    CHECK(op_types(m) == std::vector<std::string>{"Conv", "Add"});
  }
  SUBCASE("Add output read twice") {
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.conv("x", "c", 2, 2, 3, 1);
    net.mb.node("Add", {"c", "x"}, {"s"});
    net.mb.node("Relu", {"s"}, {"y"});
    net.mb.node("Neg", {"s"}, {"z"});
    net.mb.output("y");
    net.mb.output("z");
    Model m = check_fused_matches(net.mb);
    CHECK(op_types(m) == std::vector<std::string>{"FusedConv", "Relu", "Neg"});
    CHECK(m.graph().nodes[0].attrs.get_string("activation") == "");
    CHECK(m.graph().nodes[0].inputs.size() == 4);
  }
}

TEST_CASE("Pad (zeros, spatial) + Conv -> Conv with larger pads") {
  for (int opset : {13, 10}) {
    CAPTURE(opset);
    Net net(opset);
    net.mb.input("x", {-1, 2, 5, 5});
    if (opset >= 11) {
      net.mb.init("pads", Tensor::from_vector<int64_t>({8}, {0, 0, 1, 2, 0, 0, 2, 0}));
      net.mb.node("Pad", {"x", "pads"}, {"p"});
    } else {
      ModelBuilder::attr_ints(net.mb.node("Pad", {"x"}, {"p"}), "pads", {0, 0, 1, 2, 0, 0, 2, 0});
    }
    auto& c = net.conv("p", "y", 2, 3, 3);
    ModelBuilder::attr_ints(c, "pads", {1, 0, 0, 1});
    net.mb.output("y");
    Model m = check_fused_matches(net.mb);
    REQUIRE(op_types(m) == std::vector<std::string>{"Conv"});
    CHECK(m.graph().nodes[0].attrs.get_ints("pads") == std::vector<int64_t>{2, 2, 2, 1});
    CHECK(op_types(load(net.mb, "blocks")) == std::vector<std::string>{"Pad", "Conv"});
  }
  {  // padding of the channel axis stays
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.mb.init("pads", Tensor::from_vector<int64_t>({8}, {0, 1, 1, 1, 0, 0, 1, 1}));
    net.mb.node("Pad", {"x", "pads"}, {"p"});
    net.conv("p", "y", 3, 3, 3);
    net.mb.output("y");
    CHECK(op_types(check_fused_matches(net.mb)) == std::vector<std::string>{"Pad", "Conv"});
  }
  {  // reflect padding stays
    Net net;
    net.mb.input("x", {1, 2, 5, 5});
    net.mb.init("pads", Tensor::from_vector<int64_t>({8}, {0, 0, 1, 1, 0, 0, 1, 1}));
    ModelBuilder::attr_string(net.mb.node("Pad", {"x", "pads"}, {"p"}), "mode", "reflect");
    net.conv("p", "y", 2, 3, 3);
    net.mb.output("y");
    CHECK(op_types(check_fused_matches(net.mb)) == std::vector<std::string>{"Pad", "Conv"});
  }
}

TEST_CASE("Reshape/Flatten chains merge into one Reshape; a no-op Reshape disappears") {
  Net net;
  net.mb.input("x", {-1, 4, 2, 3});
  net.mb.node("Flatten", {"x"}, {"f"});
  net.mb.init("s1", Tensor::from_vector<int64_t>({3}, {-1, 6, 4}));
  net.mb.node("Reshape", {"f", "s1"}, {"r"}, "second");
  net.mb.init("s2", Tensor::from_vector<int64_t>({3}, {-1, 6, 4}));
  net.mb.node("Reshape", {"r", "s2"}, {"same"});
  net.mb.node("Relu", {"same"}, {"y"});
  net.mb.output("y");
  Model m = check_fused_matches(net.mb, "all", 3);
  REQUIRE(op_types(m) == std::vector<std::string>{"Reshape", "Relu"});
  const Node& r = m.graph().nodes[0];
  CHECK(r.name == "second");
  CHECK(m.graph().value(r.inputs[0]).name == "x");
  CHECK(m.graph().value(r.inputs[1]).constant->to_int_vector() == std::vector<int64_t>{-1, 6, 4});
  CHECK(op_types(load(net.mb, "blocks")) ==
        std::vector<std::string>{"Flatten", "Reshape", "Reshape", "Relu"});
}

TEST_SUITE("models") {
  TEST_CASE("fashion models: fuse all gives the unfused logits; BN gone, residual Sums present") {
    const std::string dir = engine::test::test_data_dir();
    if (dir.empty()) return;
    // Every *_fp32.onnx model, plus the one with float16 weights.
    std::vector<std::string> names{"vgg16_bn_fp16w"};
    for (const auto& e : std::filesystem::directory_iterator(dir + "/models/fashion")) {
      const std::string f = e.path().filename().string();
      if (f.size() > 10 && f.compare(f.size() - 10, 10, "_fp32.onnx") == 0)
        names.push_back(f.substr(0, f.size() - 5));
    }
    std::sort(names.begin(), names.end());
    CHECK(names.size() >= 4);
    for (const std::string& name : names) {
      CAPTURE(name);
      const std::string path = dir + "/models/fashion/" + name + ".onnx";
      // Unfused on the reference kernels vs fully fused on the default (oneDNN) backend.
      ModelOptions none, all;
      none.passes.fuse = "none";
      none.backend = "reference";
      all.passes.fuse = "all";
      Model a = Model::load(path, none), b = Model::load(path, all);
      Tensor x = read_npy(dir + "/models/fashion/reference/" + name + ".input16.npy");
      const Tensor ya = a.run(std::vector<Tensor>{x})[0], yb = b.run(std::vector<Tensor>{x})[0];
      REQUIRE(ya.shape() == yb.shape());
      double max_err = 0;
      for (int64_t i = 0; i < ya.numel(); ++i)
        max_err = std::max(max_err, double(std::abs(ya.data<float>()[i] - yb.data<float>()[i])));
      std::map<std::string, int> ops;
      int sums = 0;
      for (const Node& n : b.ir().nodes) {
        ++ops[n.op_type];
        sums += n.op_type == "FusedConv" && n.inputs.size() > 3 && n.inputs[3] >= 0;
      }
      MESSAGE(name, ": max |logit diff| none vs all = ", max_err, "; ", a.graph().nodes.size(),
              " -> ", b.ir().nodes.size(), " nodes, ", ops["FusedConv"], " FusedConv (", sums,
              " with Sum)");
      CHECK(max_err < 1e-3);
      CHECK(ops["BatchNormalization"] == 0);
      if (name == "resnet18_fp32") CHECK(sums == 8);
      if (name == "mobilenet_v2_bn_fp32") CHECK(sums == 10);
    }
  }
}
