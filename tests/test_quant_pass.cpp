// The quantization pass and the PTQ pipeline on small generated models: which nodes become
// integer ops, where QuantizeLinear / DequantizeLinear go, partial quantization, config and stats
// files, and accuracy against the FP32 model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/engine.h"
#include "frontend/native.h"
#include "frontend/onnx_writer.h"
#include "frontend/tensor_proto.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace engine::test {
namespace {

// x[N,3,8,8] -> conv1(3->8) -> relu -> conv2(8->8) -> add(conv2, relu1) -> relu -> maxpool ->
// global avg pool -> flatten -> gemm(8->4) -> y
std::string small_cnn() {
  ModelBuilder b;
  b.input("x", {-1, 3, 8, 8});
  b.output("y");
  b.init("w1", random_tensor({8, 3, 3, 3}, 1, 0.3f));
  b.init("b1", random_tensor({8}, 2, 0.1f));
  b.init("w2", random_tensor({8, 8, 3, 3}, 3, 0.2f));
  b.init("b2", random_tensor({8}, 4, 0.1f));
  b.init("wf", random_tensor({4, 8}, 5, 0.5f));
  b.init("bf", random_tensor({4}, 6, 0.1f));
  b.init("shape", Tensor::from_vector<int64_t>({2}, {0, -1}));
  auto& c1 = b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1");
  ModelBuilder::attr_ints(c1, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  auto& c2 = b.node("Conv", {"r1", "w2", "b2"}, {"c2"}, "conv2");
  ModelBuilder::attr_ints(c2, "pads", {1, 1, 1, 1});
  b.node("Add", {"c2", "r1"}, {"s"}, "add");
  b.node("Relu", {"s"}, {"r2"}, "relu2");
  auto& mp = b.node("MaxPool", {"r2"}, {"p"}, "pool");
  ModelBuilder::attr_ints(mp, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  b.node("GlobalAveragePool", {"p"}, {"g"}, "gap");
  b.node("Reshape", {"g", "shape"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "wf", "bf"}, {"y"}, "fc");
  ModelBuilder::attr_int(fc, "transB", 1);
  return b.bytes();
}

Model load_unfused() {
  ModelOptions o;
  o.passes.fuse = "none";
  return Model::load_from_memory(small_cnn(), o);
}

BatchSource batches(int count, int64_t batch, uint64_t seed) {
  auto i = std::make_shared<int>(0);
  return [=](std::vector<Tensor>& in) {
    if (*i >= count) return false;
    in.push_back(random_tensor({batch, 3, 8, 8}, seed + uint64_t((*i)++)));
    return true;
  };
}

// Relative RMS error of b against a.
double rel_rms(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a.data<float>()[i]) - double(b.data<float>()[i]);
    num += d * d;
    den += double(a.data<float>()[i]) * double(a.data<float>()[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST_CASE("quantize: a small CNN runs in integers end to end and stays close to FP32") {
  const Model fp32 = load_unfused();
  quant::QuantConfig cfg;
  QuantizeReport rep;
  const Model q = fp32.quantize(cfg, batches(4, 8, 100), &rep);
  CHECK(q.is_quantized());
  CHECK_FALSE(fp32.is_quantized());
  const auto c = op_counts(q.ir());
  // Everything on the path is integer: one QuantizeLinear at the input, one DequantizeLinear at
  // the output; the Relu after the residual Add becomes an integer Clip.
  CHECK(c.at("QuantizeLinear") == 1);
  CHECK(c.at("DequantizeLinear") == 1);
  CHECK(c.at("QAdd") == 1);
  CHECK(c.at("QGemm") == 1);
  CHECK(c.at("QGlobalAveragePool") == 1);
  CHECK(c.at("MaxPool") == 1);
  CHECK(c.at("QConv") == 2);
  for (const auto& d : rep.decisions)
    if (d.op_type != "Reshape" || d.quantized)
      CHECK_MESSAGE(d.quantized, d.name << ": " << d.reason);
  CHECK(rep.quantize_nodes == 1);
  CHECK(rep.dequantize_nodes == 1);
  CHECK(rep.samples == 32);
  // Output name and shape unchanged; close to FP32 on fresh data.
  CHECK(q.outputs()[0].name == "y");
  const Tensor x = random_tensor({16, 3, 8, 8}, 999);
  const Tensor yf = fp32.run({x})[0];
  const Tensor yq = q.run({x})[0];
  REQUIRE(yq.shape() == yf.shape());
  CHECK(rel_rms(yf, yq) < 0.05);
  // The quantized model round-trips through ONNX (engine domain) and gives identical results.
  const Model back = Model::load_from_memory(save_onnx_bytes(q.ir()));
  const Tensor yb = back.run({x})[0];
  CHECK(std::memcmp(yb.raw(), yq.raw(), yq.nbytes()) == 0);
}

TEST_CASE("quantize: fused graph: conv + relu and conv + residual add + relu become single QConv") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  QuantizeReport rep;
  const Model q = fp32.quantize(quant::QuantConfig{}, batches(4, 8, 100), &rep);
  const auto c = op_counts(q.ir());
  CHECK(c.at("QConv") == 2);
  CHECK(c.count("QAdd") == 0);
  CHECK(c.count("Clip") == 0);
  CHECK(c.at("QuantizeLinear") == 1);
  CHECK(c.at("DequantizeLinear") == 1);
  for (const Node& n : q.ir().nodes)
    if (n.name == "conv2") {
      CHECK(n.op_type == "QConv");
      CHECK(n.inputs.size() == 12);  // with the residual Sum input
      // Relu fused: the output never goes below the zero point (= real 0).
      const Tensor& zp = *q.ir().value(n.inputs[7]).constant;
      CHECK(n.attrs.get_int("out_min") == int64_t(zp.data<uint8_t>()[0]));
    }
  const Tensor x = random_tensor({16, 3, 8, 8}, 999);
  CHECK(rel_rms(fp32.run({x})[0], q.run({x})[0]) < 0.05);
}

TEST_CASE("quantize: both requantization modes and fewer multiplier bits stay close") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  const Tensor x = random_tensor({8, 3, 8, 8}, 7);
  const Tensor yf = fp32.run({x})[0];
  for (auto mode : {quant::RequantMode::Fixed, quant::RequantMode::Float}) {
    quant::QuantConfig cfg;
    cfg.requant = mode;
    const Model q = fp32.quantize(cfg, batches(2, 8, 50));
    CHECK(rel_rms(yf, q.run({x})[0]) < 0.05);
  }
  quant::QuantConfig coarse;
  coarse.scale_bits = 4;  // multipliers rounded to 4 bits: worse, but still sane
  const double err4 = rel_rms(yf, fp32.quantize(coarse, batches(2, 8, 50)).run({x})[0]);
  CHECK(err4 < 0.5);
}

TEST_CASE("quantize: excluded nodes, --quantize-from and first/last stay FP32 with Q/DQ around") {
  const Model fp32 = load_unfused();
  SUBCASE("exclude by name") {
    quant::QuantConfig cfg;
    cfg.exclude = {"conv2"};
    QuantizeReport rep;
    const Model q = fp32.quantize(cfg, batches(2, 4, 1), &rep);
    const auto c = op_counts(q.ir());
    CHECK(c.at("Conv") == 1);
    CHECK(c.at("QConv") == 1);
    for (const auto& d : rep.decisions)
      if (d.name == "conv2") {
        CHECK_FALSE(d.quantized);
        CHECK(d.reason.find("excluded") != std::string::npos);
      }
    // relu1's output is needed in FP32 by conv2 and quantized by the add: one DQ for conv2.
    CHECK(c.at("DequantizeLinear") == 2);
  }
  SUBCASE("exclude by op type") {
    quant::QuantConfig cfg;
    cfg.exclude = {"Gemm"};
    const Model q = fp32.quantize(cfg, batches(2, 4, 1));
    CHECK(op_counts(q.ir()).at("Gemm") == 1);
  }
  SUBCASE("quantize-from") {
    quant::QuantConfig cfg;
    cfg.quantize_from = "add";
    const Model q = fp32.quantize(cfg, batches(2, 4, 1));
    const auto c = op_counts(q.ir());
    CHECK(c.at("Conv") == 2);
    CHECK(c.count("QConv") == 0);
    CHECK(c.at("QAdd") == 1);
    cfg.quantize_from = "no_such_node";
    CHECK_THROWS_WITH_AS(fp32.quantize(cfg, batches(1, 2, 1)),
                         doctest::Contains("no node named 'no_such_node'"), Error);
  }
  SUBCASE("keep first and last") {
    quant::QuantConfig cfg;
    cfg.keep_first_last_fp32 = true;
    const Model q = fp32.quantize(cfg, batches(2, 4, 1));
    const auto c = op_counts(q.ir());
    CHECK(c.at("Conv") == 1);
    CHECK(c.at("Gemm") == 1);
    CHECK(c.at("QConv") == 1);
  }
}

TEST_CASE("quantize: bit widths and modes set the tensor types and ranges") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  quant::QuantConfig cfg;
  cfg.defaults.mode_a = quant::QMode::Sym;
  cfg.defaults.bits_w = 4;
  cfg.defaults.bits_a = 6;
  QuantizeReport rep;
  const Model q = fp32.quantize(cfg, batches(2, 4, 3), &rep);
  const Graph& g = q.ir();
  for (const Node& n : g.nodes) {
    if (n.op_type != "QConv") continue;
    const Tensor& w = *g.value(n.inputs[3]).constant;
    REQUIRE(w.dtype() == DType::I8);
    for (int64_t i = 0; i < w.numel(); ++i) {
      CHECK(w.data<int8_t>()[i] >= -8);
      CHECK(w.data<int8_t>()[i] <= 7);
    }
    CHECK(g.value(n.outputs[0]).dtype == DType::I8);  // sym activations are int8
    CHECK(n.attrs.get_int("out_min") >= -32);
    CHECK(n.attrs.get_int("out_max") <= 31);
  }
  for (const auto& [name, c] : rep.chosen.items()) {
    CHECK(c["bits"] == 6);
    CHECK(c["zero_point"] == 0);
    CHECK(std::isfinite(c["scale"].get<double>()));
  }
}

TEST_CASE("quantize: constant inputs and all-zero data never give inf/NaN scales") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  auto zeros = [n = 0](std::vector<Tensor>& in) mutable {
    if (n++) return false;
    in.push_back(Tensor(DType::F32, {2, 3, 8, 8}));
    return true;
  };
  QuantizeReport rep;
  const Model q = fp32.quantize(quant::QuantConfig{}, zeros, &rep);
  for (const auto& [name, c] : rep.chosen.items()) {
    CHECK(std::isfinite(c["scale"].get<double>()));
    CHECK(c["scale"].get<double>() > 0);
  }
  const Tensor y = q.run({Tensor(DType::F32, {2, 3, 8, 8})})[0];
  for (int64_t i = 0; i < y.numel(); ++i) CHECK(std::isfinite(y.data<float>()[i]));
}

TEST_CASE("quantize: stats file round trip reproduces the model; override_range is honoured") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  quant::QuantConfig cfg;
  QuantizeReport rep;
  const Model q1 = fp32.quantize(cfg, batches(3, 4, 11), &rep);
  const nlohmann::json j =
      nlohmann::json::parse(quant::stats_to_json(rep.stats, rep.samples, rep.chosen).dump(1));
  CHECK(j["samples"] == 12);
  std::map<std::string, quant::Range> ov;
  const quant::StatsMap back = quant::stats_from_json(j, "stats.json", &ov);
  CHECK(ov.empty());
  const Model q2 = fp32.quantize(cfg, back, ov);
  const Tensor x = random_tensor({4, 3, 8, 8}, 5);
  const Tensor a = q1.run({x})[0], b = q2.run({x})[0];
  CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);

  nlohmann::json edited = j;
  edited["tensors"]["x"]["override_range"] = {-1.0, 3.0};
  ov.clear();
  const quant::StatsMap back2 = quant::stats_from_json(edited, "stats.json", &ov);
  REQUIRE(ov.count("x"));
  QuantizeReport rep2;
  fp32.quantize(cfg, back2, ov, &rep2);
  // asym_u over [-1, 3]: scale 4/255, zero point round(63.75) = 64.
  CHECK(rep2.chosen["x"]["scale"].get<double>() == doctest::Approx(4.0 / 255).epsilon(1e-6));
  CHECK(rep2.chosen["x"]["zero_point"].get<int>() == 64);
  CHECK(rep2.chosen["x"]["observer"] == "override_range");

  edited["tensors"]["x"]["override_range"] = {1.0, -1.0};
  CHECK_THROWS_WITH_AS(quant::stats_from_json(edited, "stats.json", &ov),
                       doctest::Contains("override_range"), Error);
  CHECK_THROWS_WITH_AS(quant::stats_from_json(nlohmann::json::object(), "s.json", nullptr),
                       doctest::Contains("not an engine calibration stats file"), Error);
}

TEST_CASE("quantize config: JSON overrides by name, op type and glob; errors name the entry") {
  quant::QuantConfig cfg;
  quant::apply_config_json(R"({"defaults": {"observer": "percentile"},
    "layers": [{"match": "Conv", "bits_w": 4},
               {"match": "conv*", "mode_a": "asym_s"},
               {"match": "fc", "quantize": false}]})",
                           cfg, "layers.json");
  Node conv;
  conv.name = "conv2";
  conv.op_type = "Conv";
  Node fc;
  fc.name = "fc";
  fc.op_type = "Gemm";
  const auto sc = cfg.settings_for(conv);
  CHECK(sc.bits_w == 4);
  CHECK(sc.mode_a == quant::QMode::AsymS);
  CHECK(sc.observer == "percentile");
  CHECK(sc.quantize);
  CHECK_FALSE(cfg.settings_for(fc).quantize);
  quant::QuantConfig bad;
  CHECK_THROWS_WITH_AS(
      quant::apply_config_json(R"({"layers": [{"match": "a", "bits_w": 9}]})", bad, "l.json"),
      doctest::Contains("bits_w=9"), Error);
  CHECK_THROWS_WITH_AS(
      quant::apply_config_json(R"({"layers": [{"match": "a", "bitz": 4}]})", bad, "l.json"),
      doctest::Contains("unknown field 'bitz'"), Error);
  CHECK_THROWS_WITH_AS(quant::apply_config_json(
                           R"({"layers": [{"match": "a", "observer": "nope"}]})", bad, "l.json"),
                       doctest::Contains("nope"), Error);
  CHECK_THROWS_WITH_AS(quant::apply_config_json("{", bad, "l.json"),
                       doctest::Contains("not valid JSON"), Error);
}

}  // namespace engine::test

// ---- the native model file (frontend/native.h)

namespace engine::test {
namespace {

// Splits a native file into its JSON header and data, lets `edit` change the header, and puts
// the file back together (header size and data offset recomputed).
std::string edit_native(const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t header_bytes = 0, data_offset = 0, data_bytes = 0;
  std::memcpy(&header_bytes, file.data() + 16, 8);
  std::memcpy(&data_offset, file.data() + 24, 8);
  std::memcpy(&data_bytes, file.data() + 32, 8);
  nlohmann::json h = nlohmann::json::parse(file.substr(40, header_bytes));
  edit(h);
  const std::string text = h.dump();
  std::string out = file.substr(0, 40) + text;
  const uint64_t new_offset = (out.size() + 63) / 64 * 64;
  out.resize(new_offset, '\0');
  out += file.substr(data_offset, data_bytes);
  const uint64_t n = text.size();
  std::memcpy(out.data() + 16, &n, 8);
  std::memcpy(out.data() + 24, &new_offset, 8);
  return out;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Every value (name, type, shape, constant bytes, quantization parameters) and every node (op,
// inputs, outputs, each attribute bit for bit) of two IRs.
void check_same_ir(const Graph& a, const Graph& b) {
  REQUIRE(a.values.size() == b.values.size());
  for (size_t i = 0; i < a.values.size(); ++i) {
    const Value &u = a.values[i], &v = b.values[i];
    CAPTURE(u.name);
    CHECK(u.name == v.name);
    CHECK(u.dtype == v.dtype);
    CHECK(u.has_shape == v.has_shape);
    CHECK(u.shape == v.shape);
    REQUIRE(u.constant.has_value() == v.constant.has_value());
    if (u.constant) CHECK(same_tensor(*u.constant, *v.constant));
    CHECK(u.quant.scale == v.quant.scale);
    CHECK(u.quant.zero_point == v.quant.zero_point);
    CHECK(u.quant.axis == v.quant.axis);
    CHECK(u.quant.bits == v.quant.bits);
  }
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const Node &n = a.nodes[i], &m = b.nodes[i];
    CAPTURE(n.name);
    CHECK(n.op_type == m.op_type);
    CHECK(n.domain == m.domain);
    CHECK(n.inputs == m.inputs);
    CHECK(n.outputs == m.outputs);
    REQUIRE(n.attrs.all().size() == m.attrs.all().size());
    for (const auto& [k, x] : n.attrs.all()) {
      CAPTURE(k);
      REQUIRE(m.attrs.has(k));
      const AttrValue& y = m.attrs.all().at(k);
      REQUIRE(x.index() == y.index());
      if (const auto* t = std::get_if<Tensor>(&x))
        CHECK(same_tensor(*t, std::get<Tensor>(y)));
      else if (const auto* f = std::get_if<float>(&x))  // bits: NaN and inf too
        CHECK(std::memcmp(f, &std::get<float>(y), 4) == 0);
      else
        CHECK(std::visit(
            [&](const auto& xv) {
              using T = std::decay_t<decltype(xv)>;
              if constexpr (std::is_same_v<T, Tensor>)
                return false;
              else
                return xv == std::get<T>(y);
            },
            x));
    }
  }
  CHECK(a.inputs == b.inputs);
  CHECK(a.outputs == b.outputs);
}

}  // namespace

TEST_CASE("native: float attributes (inf included) and the whole IR survive the round trip") {
  ModelBuilder b;
  b.input("x", {-1, 4});
  b.output("y");
  ModelBuilder::attr_float(b.node("LeakyRelu", {"x"}, {"a"}, "leaky"), "alpha", 0.0123457f);
  auto& hs = b.node("HardSigmoid", {"a"}, {"h"}, "hs");
  ModelBuilder::attr_float(hs, "alpha", 1.0f / 3.0f);
  ModelBuilder::attr_float(hs, "beta", 0.4999999f);
  auto& e = b.node("Elu", {"h"}, {"y"}, "elu");
  ModelBuilder::attr_float(e, "alpha", std::numeric_limits<float>::infinity());
  const Model m = Model::load_from_memory(b.bytes());
  const Model back = Model::load_from_memory(save_native_bytes(m.ir(), m.info()));
  check_same_ir(m.ir(), back.ir());
  CHECK(back.ir().nodes.at(0).attrs.get_float("alpha") == 0.0123457f);
  const Model q = Model::load_from_memory(small_cnn()).quantize({}, batches(2, 2, 5));
  check_same_ir(q.ir(), Model::load_from_memory(save_native_bytes(q.ir(), q.info())).ir());
}

TEST_CASE("native: FP32 and INT8 models reload from the file and run to the same bits") {
  const Model fp32 = Model::load_from_memory(small_cnn());
  quant::QuantConfig cfg;
  const Model int8 = fp32.quantize(cfg, batches(4, 2, 100));
  for (const std::string backend : {"onednn", "reference"}) {
    CAPTURE(backend);
    ModelOptions o;
    o.backend = backend;
    for (const Model* m : {&fp32, &int8}) {
      const std::string path =
          (std::filesystem::temp_directory_path() / "engine_native.eng").string();
      m->save_native(path);
      const std::string before = read_file_bytes(path, size_t(1) << 30);
      CHECK(before.rfind("ENGINEIR", 0) == 0);
      const Model back = Model::load(path, o);
      const Model mem = Model::load_from_memory(before, o);
      CHECK(back.is_quantized() == m->is_quantized());
      CHECK(back.info().producer == m->info().producer);
      CHECK(back.info().opset == m->info().opset);
      CHECK(back.info().file_bytes == before.size());
      // The same IR: the same nodes in the same order, no pass ran again.
      REQUIRE(back.ir().nodes.size() == m->ir().nodes.size());
      for (size_t i = 0; i < back.ir().nodes.size(); ++i)
        CHECK(back.ir().nodes[i].op_type == m->ir().nodes[i].op_type);
      const Model same_backend = Model::load_from_memory(save_onnx_bytes(m->ir()), o);
      for (uint64_t seed : {1u, 2u}) {
        const Tensor x = random_tensor({3, 3, 8, 8}, seed);
        const Tensor want = same_backend.run({x})[0];
        const Tensor got = back.run({x})[0], got_mem = mem.run({x})[0];
        REQUIRE(got.shape() == want.shape());
        CHECK(std::memcmp(got.raw(), want.raw(), want.nbytes()) == 0);
        CHECK(std::memcmp(got_mem.raw(), want.raw(), want.nbytes()) == 0);
      }
      // Running from the mapping never writes to the file.
      CHECK(read_file_bytes(path, size_t(1) << 30) == before);
      std::filesystem::remove(path);
    }
  }
}

TEST_CASE("native: damaged and hostile files give errors naming the file") {
  const Model m = Model::load_from_memory(small_cnn()).quantize({}, batches(2, 2, 7));
  const std::string good = save_native_bytes(m.ir(), m.info());
  using nlohmann::json;
  auto first_const = [](json& h) -> json& {
    for (json& v : h["values"])
      if (v.contains("const")) return v["const"];
    FAIL("no constant");
    return h;
  };
  struct Case {
    std::string name, bytes, message;
  };
  std::string version = good, truncated = good.substr(0, good.size() - 100);
  version[8] = 2;
  std::string past_end = good;
  const uint64_t huge = uint64_t(1) << 40;
  std::memcpy(past_end.data() + 32, &huge, 8);
  const Case cases[] = {
      {"version", version, "format version 2; this engine reads version 1"},
      {"truncated", truncated, "does not fit the file"},
      {"data past the end", past_end, "does not fit the file"},
      {"header is not JSON", good.substr(0, 41) + "{" + good.substr(42), "malformed header"},
      {"tensor offset", edit_native(good, [&](json& h) { first_const(h)["offset"] = 1 << 30; }),
       "is outside the data section"},
      {"unaligned offset", edit_native(good, [&](json& h) { first_const(h)["offset"] = 3; }),
       "is outside the data section"},
      {"bytes vs shape",
       edit_native(good,
                   [&](json& h) {
                     first_const(h)["shape"] = {3, 5};
                   }),
       "bytes for shape"},
      {"overflowing shape",
       edit_native(good,
                   [&](json& h) {
                     first_const(h)["shape"] = {int64_t(1) << 40, int64_t(1) << 40};
                   }),
       "more elements than int64 can count"},
      {"dtype", edit_native(good, [&](json& h) { first_const(h)["dtype"] = 99; }),
       "unknown element type 99"},
      {"value id", edit_native(good, [](json& h) { h["nodes"][0]["in"][0] = 100000; }),
       "value id 100000 out of range"},
      {"op", edit_native(good, [](json& h) { h["nodes"][0]["op"] = "Launch"; }),
       "operator Launch is not supported"},
      {"cycle",
       edit_native(good,
                   [](json& h) {
                     auto& n = h["nodes"];
                     n[0]["in"][0] = n[n.size() - 1]["out"][0];
                   }),
       "cycle"},
      {"inputs", edit_native(good, [](json& h) { h["nodes"][0]["in"] = json::array(); }),
       "inputs, expected"},
      {"duplicate name",
       edit_native(good, [](json& h) { h["values"][1]["name"] = h["values"][0]["name"]; }),
       "is defined twice"},
      {"missing field", edit_native(good, [](json& h) { h.erase("nodes"); }), "malformed header"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK_THROWS_WITH_AS(Model::load_from_memory(c.bytes), doctest::Contains(c.message.c_str()),
                         Error);
    const std::string p = (std::filesystem::temp_directory_path() / "bad_model.eng").string();
    { std::ofstream(p, std::ios::binary) << c.bytes; }
    CHECK_THROWS_WITH_AS(Model::load(p), doctest::Contains("bad_model.eng: "), Error);
    std::filesystem::remove(p);
  }
}

}  // namespace engine::test
