// Core: tensors, float16 conversion, memory planner, passes, executor, and the ONNX loader's
// error paths on malformed models.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "core/memory_planner.h"
#include "engine/engine.h"
#include "model_builder.h"
#include "ops/ops.h"

using namespace engine;
using engine::test::ModelBuilder;

TEST_CASE("checked_numel rejects negative and overflowing shapes") {
  CHECK(checked_numel({2, 3, 4}) == 24);
  CHECK(checked_numel({}) == 1);
  CHECK(checked_numel({5, 0, 7}) == 0);
  CHECK_THROWS_WITH_AS(checked_numel({2, -1}), doctest::Contains("negative dimension"), Error);
  CHECK_THROWS_WITH_AS(checked_numel({int64_t(1) << 40, int64_t(1) << 40}),
                       doctest::Contains("more elements than int64"), Error);
  CHECK_THROWS_WITH_AS(Tensor(DType::F32, {int64_t(1) << 40}), doctest::Contains("16 GiB"), Error);
}

TEST_CASE("float16 conversion: exact values, rounding, subnormals, inf") {
  CHECK(half_to_float(0x3c00) == 1.0f);
  CHECK(half_to_float(0xc000) == -2.0f);
  CHECK(half_to_float(0x7bff) == 65504.0f);
  CHECK(half_to_float(0x0001) == doctest::Approx(5.9604645e-8f));
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(1e6f) == 0x7c00);
  CHECK(float_to_half(5.9604645e-8f) == 0x0001);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even -> 1.
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);
  for (uint16_t h : {uint16_t(0x3555), uint16_t(0x0234), uint16_t(0x8400), uint16_t(0x7800)})
    CHECK(float_to_half(half_to_float(h)) == h);
}

TEST_CASE("memory planner reuses buffers whose lifetimes do not overlap") {
  // A chain a -> b -> c -> d: at most two buffers live at once.
  std::vector<BufferRequest> req = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  MemoryPlan p = plan_memory(req);
  CHECK(p.arena_bytes == 2 * 1024);  // 1000 rounded up to 64-byte alignment
  CHECK(p.sum_bytes == 4 * 1024);
  for (size_t i = 0; i + 1 < req.size(); ++i) CHECK(p.offsets[i] != p.offsets[i + 1]);
  // Overlapping lifetimes never share bytes.
  std::vector<BufferRequest> r2 = {{64, 0, 5}, {128, 1, 2}, {640, 2, 3}, {64, 4, 5}, {256, 0, 0}};
  MemoryPlan p2 = plan_memory(r2);
  for (size_t i = 0; i < r2.size(); ++i)
    for (size_t j = i + 1; j < r2.size(); ++j) {
      bool overlap_time = r2[i].first <= r2[j].last && r2[j].first <= r2[i].last;
      bool overlap_mem = p2.offsets[i] < p2.offsets[j] + r2[j].bytes &&
                         p2.offsets[j] < p2.offsets[i] + r2[i].bytes;
      CHECK_FALSE((overlap_time && overlap_mem));
    }
}

namespace {
Tensor ftensor(Dims d, std::vector<float> v) {
  return Tensor::from_vector<float>(d, v);
}
}  // namespace

TEST_CASE("executor: dynamic batch, shape subgraph folded at plan time, identity removal") {
  // y = Reshape(Relu(x) + b, Concat(Shape(x)[0:1], [-1])) -> [N, 6]
  ModelBuilder mb(13);
  mb.input("x", {-1, 2, 3});
  mb.init("b", ftensor({3}, {1, -2, 3}));
  mb.init("minus1", Tensor::from_vector<int64_t>({1}, {-1}));
  mb.init("zero", Tensor::from_vector<int64_t>({1}, {0}));
  mb.init("one", Tensor::from_vector<int64_t>({1}, {1}));
  mb.node("Relu", {"x"}, {"r"});
  mb.node("Identity", {"r"}, {"ri"});
  mb.node("Add", {"ri", "b"}, {"s"});
  mb.node("Shape", {"x"}, {"shp"});
  mb.node("Slice", {"shp", "zero", "one"}, {"n"});
  auto& c = mb.node("Concat", {"n", "minus1"}, {"newshape"});
  ModelBuilder::attr_int(c, "axis", 0);
  mb.node("Reshape", {"s", "newshape"}, {"y"});
  mb.output("y");
  Model m = Model::load_from_memory(mb.bytes());
  for (const Node& n : m.graph().nodes) CHECK(n.op_type != "Identity");
  for (int64_t batch : {1, 3}) {
    Tensor x(DType::F32, {batch, 2, 3});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 5) - 2.0f;
    auto out = m.run(std::vector<Tensor>{x});
    REQUIRE(out.size() == 1);
    CHECK(out[0].shape() == Dims{batch, 6});
    const float bias[3] = {1, -2, 3};
    for (int64_t i = 0; i < x.numel(); ++i)
      CHECK(out[0].data<float>()[i] == std::max(0.0f, x.data<float>()[i]) + bias[i % 3]);
    // Only Relu, Add and Reshape run at run time; the shape chain was evaluated when planning.
    auto plan = m.plan({x.shape()});
    CHECK(plan->steps.size() == 3);
  }
}

TEST_CASE("executor: a node whose outputs only feed plan-time folded nodes does not run") {
  // y = Reshape(Relu(x), Shape(Sigmoid(x))): Sigmoid's values are never needed, only its shape.
  ModelBuilder mb(13);
  mb.input("x", {-1, 2, 3});
  mb.node("Relu", {"x"}, {"r"}, "relu");
  mb.node("Sigmoid", {"x"}, {"sg"}, "sigmoid");
  mb.node("Shape", {"sg"}, {"shp"}, "shape");
  mb.node("Reshape", {"r", "shp"}, {"y"}, "reshape");
  mb.output("y");
  Model m = Model::load_from_memory(mb.bytes());
  Tensor x(DType::F32, {2, 2, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 5) - 2.0f;
  auto plan = m.plan({x.shape()});
  std::map<std::string, bool> unused;
  for (size_t st = 0; st < plan->steps.size(); ++st)
    unused[m.graph().nodes[size_t(plan->steps[st])].name] = plan->unused[st];
  CHECK(unused.size() == 3);  // relu, sigmoid, reshape (shape is folded)
  CHECK(unused["sigmoid"]);
  CHECK_FALSE(unused["relu"]);
  CHECK_FALSE(unused["reshape"]);
  const Tensor y = m.run(std::vector<Tensor>{x})[0];
  REQUIRE(y.shape() == x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    CHECK(y.data<float>()[i] == std::max(0.0f, x.data<float>()[i]));
  // A caller watching every node (calibration, the debugger) still sees it run.
  std::vector<std::string> ran;
  RunOptions o;
  o.after_node = [&](const Node& n, const std::vector<Tensor*>&) { ran.push_back(n.name); };
  m.run(std::vector<Tensor>{x}, o);
  CHECK(std::count(ran.begin(), ran.end(), "sigmoid") == 1);
}

TEST_CASE("loader: clean errors on malformed models") {
  const OpRegistry& reg = reference_registry();
  SUBCASE("truncated file") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("Relu", {"x"}, {"y"});
    mb.output("y");
    std::string b = mb.bytes();
    CHECK_THROWS_WITH_AS(load_onnx_bytes(b.substr(0, b.size() / 2), reg),
                         doctest::Contains("not a valid ONNX model"), Error);
  }
  SUBCASE("missing initializer") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("Add", {"x", "bias"}, {"y"}, "add_bias");
    mb.output("y");
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg),
                         doctest::Contains("Add 'add_bias': input 'bias' is not produced"), Error);
  }
  SUBCASE("cycle") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("Add", {"x", "b"}, {"a"}, "first");
    mb.node("Relu", {"a"}, {"b"}, "second");
    mb.output("b");
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg), doctest::Contains("cycle"), Error);
  }
  SUBCASE("negative dimension") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("Relu", {"x"}, {"y"});
    mb.output("y");
    mb.proto()
        .mutable_graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(1)
        ->set_dim_value(-4);
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg),
                         doctest::Contains("negative dimension -4"), Error);
  }
  SUBCASE("initializer data shorter than its shape, huge declared shape") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.init("w", ftensor({2}, {1, 2}));
    mb.proto().mutable_graph()->mutable_initializer(0)->set_dims(0, int64_t(1) << 40);
    mb.node("Add", {"x", "w"}, {"y"});
    mb.output("y");
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg),
                         doctest::Contains("initializer 'w': raw_data holds 8 bytes"), Error);
  }
  SUBCASE("unsupported operators are all listed") {
    ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("FancyOp", {"x"}, {"a"}, "f1");
    mb.node("OtherOp", {"a"}, {"b"}, "o1");
    mb.node("FancyOp", {"b"}, {"y"}, "f2");
    mb.output("y");
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg),
                         doctest::Contains("2 unsupported operators:\n  FancyOp (2 nodes, first "
                                           "'f1')\n  OtherOp (1 node, first 'o1')"),
                         Error);
  }
  SUBCASE("opset 99") {
    ModelBuilder mb(99);
    mb.input("x", {1, 2});
    mb.node("Relu", {"x"}, {"y"});
    mb.output("y");
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg), doctest::Contains("opset 99"), Error);
  }
  SUBCASE("external data path with ..") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / "engine_ext_test";
    fs::create_directories(dir / "m");
    { std::ofstream(dir / "secret.bin", std::ios::binary) << std::string(8, '\0'); }
    ModelBuilder mb;
    mb.input("x", {2});
    mb.init("w", ftensor({2}, {1, 2}));
    auto* t = mb.proto().mutable_graph()->mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value("../secret.bin");
    mb.node("Add", {"x", "w"}, {"y"});
    mb.output("y");
    { std::ofstream(dir / "m" / "model.onnx", std::ios::binary) << mb.bytes(); }
    CHECK_THROWS_WITH_AS(load_onnx((dir / "m" / "model.onnx").string(), reg),
                         doctest::Contains("leaves the model's folder"), Error);
    kv->set_value("/etc/passwd");
    { std::ofstream(dir / "m" / "model.onnx", std::ios::binary) << mb.bytes(); }
    CHECK_THROWS_WITH_AS(load_onnx((dir / "m" / "model.onnx").string(), reg),
                         doctest::Contains("is absolute"), Error);
    // Inside the folder it works.
    { std::ofstream(dir / "m" / "w.bin", std::ios::binary).write("\0\0\x80?\0\0\0@", 8); }
    kv->set_value("w.bin");
    { std::ofstream(dir / "m" / "model.onnx", std::ios::binary) << mb.bytes(); }
    Graph g = load_onnx((dir / "m" / "model.onnx").string(), reg);
    const Tensor& w = *g.value(g.find_value("w")).constant;
    CHECK(w.data<float>()[0] == 1.0f);
    CHECK(w.data<float>()[1] == 2.0f);
    // A non-numeric offset is an error naming the initializer, not a std::stoll exception.
    auto* off = t->add_external_data();
    off->set_key("offset");
    off->set_value("12abc");
    { std::ofstream(dir / "m" / "model.onnx", std::ios::binary) << mb.bytes(); }
    CHECK_THROWS_WITH_AS(load_onnx((dir / "m" / "model.onnx").string(), reg),
                         doctest::Contains("initializer 'w': external data offset: '12abc'"),
                         Error);
    fs::remove_all(dir);
  }
  SUBCASE("graph depth limit") {
    // x -> Relu x 10 in a chain, plus a 1-node side branch: depth 10, 11 nodes.
    ModelBuilder mb;
    mb.input("x", {1, 2});
    std::string prev = "x";
    for (int i = 0; i < 10; ++i) {
      mb.node("Relu", {prev}, {"r" + std::to_string(i)}, "relu" + std::to_string(i));
      prev = "r" + std::to_string(i);
    }
    mb.node("Neg", {"x"}, {"side"}, "side");
    mb.output(prev);
    mb.output("side");
    LoadOptions o;
    o.max_depth = 10;
    CHECK(load_onnx_bytes(mb.bytes(), reg, o).nodes.size() == 11);
    o.max_depth = 9;
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg, o),
                         doctest::Contains("node Relu 'relu9' is 10 nodes deep, more than the "
                                           "limit of 9"),
                         Error);
  }
  SUBCASE("attribute size limit") {
    ModelBuilder mb;
    mb.input("x", {1, 2, 3});
    auto& n = mb.node("Transpose", {"x"}, {"y"}, "tr");
    ModelBuilder::attr_ints(n, "perm", {2, 1, 0});
    mb.output("y");
    LoadOptions o;
    o.max_attribute_elements = 3;
    CHECK(load_onnx_bytes(mb.bytes(), reg, o).nodes.size() == 1);
    o.max_attribute_elements = 2;
    CHECK_THROWS_WITH_AS(load_onnx_bytes(mb.bytes(), reg, o),
                         doctest::Contains("node Transpose 'tr': attribute 'perm' holds 3 "
                                           "elements or bytes, more than the limit of 2"),
                         Error);
  }
}

TEST_CASE("executor: wrong input rank, shape and type are named") {
  ModelBuilder mb;
  mb.input("x", {-1, 3});
  mb.node("Relu", {"x"}, {"y"});
  mb.output("y");
  Model m = Model::load_from_memory(mb.bytes());
  CHECK_THROWS_WITH_AS(m.run(std::vector<Tensor>{Tensor(DType::F32, {2, 3, 1})}),
                       doctest::Contains("input 'x' must have shape [?,3], got [2,3,1]"), Error);
  CHECK_THROWS_WITH_AS(m.run(std::vector<Tensor>{Tensor(DType::F32, {2, 4})}),
                       doctest::Contains("input 'x' must have shape [?,3], got [2,4]"), Error);
  CHECK_THROWS_WITH_AS(m.run(std::vector<Tensor>{Tensor(DType::I64, {2, 3})}),
                       doctest::Contains("input 'x' must be float32, got int64"), Error);
  CHECK_THROWS_WITH_AS(m.run(std::map<std::string, Tensor>{{"z", Tensor(DType::F32, {1, 3})}}),
                       doctest::Contains("input 'x' is missing"), Error);
}

namespace {
// x [N, 3, 4, 4] -> Conv (3x3, pads 1) -> Relu -> `tail` ops -> y. ModelBuilder helpers add the
// rest; the reference backend keeps the ONNX ops (and exact per-sample kernels).
Model split_model(const std::function<void(ModelBuilder&)>& tail) {
  ModelBuilder mb;
  mb.input("x", {-1, 3, 4, 4});
  std::vector<float> w(4 * 3 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i * 7 % 13) - 6) * 0.1f;
  mb.init("w", ftensor({4, 3, 3, 3}, w));
  auto& c = mb.node("Conv", {"x", "w"}, {"c"});
  ModelBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
  mb.node("Relu", {"c"}, {"r"});
  tail(mb);
  mb.output("y");
  ModelOptions o;
  o.backend = "reference";
  return Model::load_from_memory(mb.bytes(), o);
}

Tensor split_input(int64_t n) {
  Tensor x(DType::F32, {n, 3, 4, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i * 5 % 17) - 8.0f;
  return x;
}
}  // namespace

TEST_CASE("batch split: separable graphs give the whole-batch outputs; batch-mixing ops opt out") {
  // Separable: pool, flatten, Gemm with constant B, Softmax over classes, a constant broadcast.
  const Model good = split_model([](ModelBuilder& mb) {
    mb.node("GlobalAveragePool", {"r"}, {"g"});
    mb.node("Flatten", {"g"}, {"f"});
    mb.init("b", ftensor({4, 2}, {1, -1, 0.5f, 2, -0.5f, 1, 3, -2}));
    mb.node("Gemm", {"f", "b"}, {"m"});
    mb.init("k", ftensor({1, 2}, {0.25f, -0.75f}));
    mb.node("Add", {"m", "k"}, {"a"});
    auto& s = mb.node("Softmax", {"a"}, {"y"});
    ModelBuilder::attr_int(s, "axis", 1);
  });
  for (int64_t n : {2, 7, 10}) {
    CAPTURE(n);
    const Tensor x = split_input(n);
    CHECK(good.plan({x.shape()})->batch_separable);
    RunOptions split, whole;
    split.threads = whole.threads = 2;
    whole.batch_split = false;
    const Tensor ys = good.run({x}, split)[0], yw = good.run({x}, whole)[0];
    REQUIRE(ys.shape() == Dims{n, 2});
    // Float kernels may block sums differently per batch size: equal to rounding (the INT8 test in
    // test_quant_models.cpp checks bit-identity).
    for (int64_t i = 0; i < ys.numel(); ++i)
      CHECK(ys.data<float>()[i] == doctest::Approx(yw.data<float>()[i]).epsilon(1e-5));
    // Each sample alone gives its row.
    for (int64_t b = 0; b < n; ++b) {
      Tensor xb(DType::F32, {1, 3, 4, 4});
      std::memcpy(xb.raw(), x.data<float>() + b * 48, 48 * sizeof(float));
      const Tensor one = good.run({xb}, whole)[0];
      CHECK(one.data<float>()[0] == doctest::Approx(ys.data<float>()[2 * b]).epsilon(1e-5));
      CHECK(one.data<float>()[1] == doctest::Approx(ys.data<float>()[2 * b + 1]).epsilon(1e-5));
    }
  }
  // Ops that mix samples keep the batch together.
  const std::vector<std::function<void(ModelBuilder&)>> mixing = {
      [](ModelBuilder& mb) {  // softmax over the batch
        mb.node("Flatten", {"r"}, {"f"});
        auto& s = mb.node("Softmax", {"f"}, {"y"});
        ModelBuilder::attr_int(s, "axis", 0);
      },
      [](ModelBuilder& mb) {  // concatenation along the batch, then back to N rows
        auto& c = mb.node("Concat", {"r", "r"}, {"cc"});
        ModelBuilder::attr_int(c, "axis", 0);
        mb.node("GlobalAveragePool", {"cc"}, {"y"});
      },
      [](ModelBuilder& mb) {  // channels first
        auto& t = mb.node("Transpose", {"r"}, {"y"});
        ModelBuilder::attr_ints(t, "perm", {1, 0, 2, 3});
      },
      [](ModelBuilder& mb) {  // an op not on the whitelist (reduces over the batch)
        auto& m = mb.node("ReduceMean", {"r"}, {"y"});
        ModelBuilder::attr_ints(m, "axes", {0});
      },
      [](ModelBuilder& mb) {  // a constant with one value per sample
        mb.init("k", ftensor({4, 1, 1, 1}, {1, 2, 3, 4}));
        mb.node("Mul", {"r", "k"}, {"y"});
      },
  };
  for (size_t i = 0; i < mixing.size(); ++i) {
    CAPTURE(i);
    const Model m = split_model(mixing[i]);
    CHECK_FALSE(m.plan({split_input(4).shape()})->batch_separable);
  }
}

TEST_CASE("remove-identity drops pools with 1x1 windows and keeps every other pool") {
  // x -> AveragePool(k1) -> MaxPool(k1, strides 1, pads 0) -> y1; x -> AveragePool(k1, s2) -> y2;
  // x -> MaxPool(k2) -> y3; x -> MaxPool(k1, pads 1) -> y4.
  ModelBuilder mb;
  mb.input("x", {1, 2, 3, 3});
  auto& a = mb.node("AveragePool", {"x"}, {"a"});
  ModelBuilder::attr_ints(a, "kernel_shape", {1, 1});
  auto& b = mb.node("MaxPool", {"a"}, {"y1"});
  ModelBuilder::attr_ints(b, "kernel_shape", {1, 1});
  ModelBuilder::attr_ints(b, "strides", {1, 1});
  ModelBuilder::attr_ints(b, "pads", {0, 0, 0, 0});
  auto& c = mb.node("AveragePool", {"x"}, {"y2"});
  ModelBuilder::attr_ints(c, "kernel_shape", {1, 1});
  ModelBuilder::attr_ints(c, "strides", {2, 2});
  auto& d = mb.node("MaxPool", {"x"}, {"y3"});
  ModelBuilder::attr_ints(d, "kernel_shape", {2, 2});
  auto& e = mb.node("MaxPool", {"x"}, {"y4"});
  ModelBuilder::attr_ints(e, "kernel_shape", {1, 1});
  ModelBuilder::attr_ints(e, "pads", {1, 1, 1, 1});
  for (const char* o : {"y1", "y2", "y3", "y4"}) mb.output(o);
  ModelOptions opt;
  opt.backend = "reference";  // no NHWC lowering: the pools keep their ONNX names
  const Model m = Model::load_from_memory(mb.bytes(), opt);
  // The two copying pools feed y1: AveragePool is gone, MaxPool stays as y1 is a graph output.
  int pools = 0;
  for (const Node& n : m.graph().nodes)
    pools += n.op_type == "AveragePool" || n.op_type == "MaxPool";
  CHECK(pools == 4);
  Tensor x(DType::F32, {1, 2, 3, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i * 7 % 11) - 5.0f;
  const auto out = m.run(std::vector<Tensor>{x});
  REQUIRE(out.size() == 4);
  REQUIRE(out[0].shape() == x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(out[0].data<float>()[i] == x.data<float>()[i]);
  CHECK(out[1].shape() == Dims{1, 2, 2, 2});
  CHECK(out[2].shape() == Dims{1, 2, 2, 2});
  CHECK(out[3].shape() == Dims{1, 2, 5, 5});
}

TEST_CASE("passes: unknown pass names are rejected, stop_after works") {
  ModelBuilder mb;
  mb.input("x", {1, 2});
  mb.node("Identity", {"x"}, {"a"});
  mb.node("Relu", {"a"}, {"y"});
  mb.output("y");
  ModelOptions o;
  o.passes.disabled = {"no-such-pass"};
  CHECK_THROWS_WITH_AS(Model::load_from_memory(mb.bytes(), o), doctest::Contains("unknown pass"),
                       Error);
  o.passes.disabled = {"remove-identity"};
  Model m = Model::load_from_memory(mb.bytes(), o);
  CHECK(m.graph().nodes.size() == 2);
  auto y = m.run(std::vector<Tensor>{ftensor({1, 2}, {-1, 2})});
  CHECK(y[0].data<float>()[0] == 0.0f);
  CHECK(y[0].data<float>()[1] == 2.0f);
}
