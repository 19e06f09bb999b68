// The quantization debugger (include/engine/debug.h) and its metrics (quant/compare.h) on small
// generated graphs whose most damaged layer is known by construction.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/debug.h"
#include "frontend/npy.h"
#include "model_builder.h"

namespace engine::test {
namespace {

TEST_CASE("debug metrics: MSE, SQNR, cosine, max error by hand") {
  const float ref[] = {1, 2, 3, 4}, test[] = {1, 2, 3, 5};
  quant::ErrorStats e;
  e.add(ref, test, 2);  // two batches merge into the same figures
  quant::ErrorStats e2;
  e2.add(ref + 2, test + 2, 2);
  e.merge(e2);
  CHECK(e.count == 4);
  CHECK(e.mse() == doctest::Approx(0.25));
  CHECK(e.sqnr_db() == doctest::Approx(10 * std::log10(30.0)));  // sum x^2 = 30, sum e^2 = 1
  CHECK(e.cosine() == doctest::Approx(34 / std::sqrt(30.0 * 39.0)));
  CHECK(e.max_abs == doctest::Approx(1.0));
  quant::ErrorStats exact;
  exact.add(ref, ref, 4);
  CHECK(exact.sqnr_db() == quant::ErrorStats::kExactDb);
  CHECK(exact.cosine() == doctest::Approx(1.0));
}

TEST_CASE("debug weights: per-channel spread, zero channels, dequantization error") {
  // 3 output channels (axis 0) with max |w| 1, 0.5, 10 -> spread = 10 / median(1) = 10.
  Tensor w = Tensor::from_vector<float>({3, 2}, {1, -1, 0.5f, 0.25f, 10, 0});
  Tensor q = Tensor::from_vector<int8_t>({3, 2}, {127, -127, 127, 64, 127, 0});
  Tensor s = Tensor::from_vector<float>({3}, {1 / 127.f, 0.5f / 127, 10 / 127.f});
  Tensor z = Tensor::from_vector<int8_t>({3}, {0, 0, 0});
  const quant::WeightReport r = quant::analyze_weights(w, q, s, z, 0);
  CHECK(r.channels == 3);
  CHECK(r.spread == doctest::Approx(10.0));
  CHECK(r.zero_channels == 0);
  // Only 0.25 is off: 64 * 0.5/127 = 0.251968...
  const double e = 64 * 0.5 / 127 - 0.25;
  CHECK(r.error.sum_err2 == doctest::Approx(e * e).epsilon(1e-4));
  Tensor wz = Tensor::from_vector<float>({2, 2}, {0, 0, 1, 1});
  Tensor qz = Tensor::from_vector<int8_t>({2, 2}, {0, 0, 127, 127});
  const quant::WeightReport rz = quant::analyze_weights(wz, qz, Tensor::scalar(1 / 127.f),
                                                        Tensor::from_vector<int8_t>({}, {0}), 0);
  CHECK(rz.zero_channels == 1);
  CHECK(!rz.per_channel);
}

// x[N,4,8,8] -> a: conv 3x3 + relu -> b: 1x1 conv + relu -> c: 1x1 conv + relu -> gap -> fc.
// Conv b's output channel 0 has weights 200x the others, all negative: after the ReLU that
// channel is always 0, so it adds nothing to the output, but with per-tensor weights its range
// sets the one weight scale and the other channels keep about one bit. b is the damaged layer.
std::string outlier_model() {
  ModelBuilder m;
  m.input("x", {-1, 4, 8, 8});
  m.output("y");
  m.init("wa", random_tensor({8, 4, 3, 3}, 11, 0.3f));
  m.init("ba", random_tensor({8}, 12, 0.1f));
  Tensor wb = random_tensor({8, 8, 1, 1}, 13, 0.4f);
  for (int i = 0; i < 8; ++i) wb.data<float>()[i] = -200.0f * (1.0f + 0.1f * float(i));
  m.init("wb", wb);
  m.init("bb", random_tensor({8}, 14, 0.1f));
  m.init("wc", random_tensor({8, 8, 1, 1}, 15, 0.4f));
  m.init("bc", random_tensor({8}, 16, 0.1f));
  m.init("wf", random_tensor({4, 8}, 17, 0.5f));
  m.init("bf", random_tensor({4}, 18, 0.1f));
  auto& a = m.node("Conv", {"x", "wa", "ba"}, {"a"}, "conv_a");
  ModelBuilder::attr_ints(a, "pads", {1, 1, 1, 1});
  m.node("Relu", {"a"}, {"ra"}, "relu_a");
  m.node("Conv", {"ra", "wb", "bb"}, {"b"}, "conv_b");
  m.node("Relu", {"b"}, {"rb"}, "relu_b");
  m.node("Conv", {"rb", "wc", "bc"}, {"c"}, "conv_c");
  m.node("Relu", {"c"}, {"rc"}, "relu_c");
  m.node("GlobalAveragePool", {"rc"}, {"g"}, "gap");
  m.node("Flatten", {"g"}, {"f"}, "flatten");
  auto& fc = m.node("Gemm", {"f", "wf", "bf"}, {"y"}, "fc");
  ModelBuilder::attr_int(fc, "transB", 1);
  return m.bytes();
}

DebugSource noise_batches(int count, int64_t batch) {
  return [=](int64_t i, DebugBatch& b) {
    if (i >= count) return false;
    b.inputs = {random_tensor({batch, 4, 8, 8}, 100 + uint64_t(i))};
    b.labels.clear();
    return true;
  };
}

quant::StatsMap calibrate(const Model& m) {
  int k = 0;
  return m.calibrate(
      [&](std::vector<Tensor>& in) {
        if (k >= 4) return false;
        in = {random_tensor({8, 4, 8, 8}, 200 + uint64_t(k++))};
        return true;
      },
      quant::StatsOptions{});
}

const LayerDebug& layer(const DebugReport& r, const std::string& node) {
  for (const LayerDebug& l : r.layers)
    if (l.node == node) return l;
  FAIL("no layer ", node);
  return r.layers.at(0);
}

TEST_CASE("debug: the layer with an outlier weight channel ranks first in both modes") {
  const Model fp32 = Model::load_from_memory(outlier_model());
  const quant::StatsMap stats = calibrate(fp32);
  quant::QuantConfig cfg;
  cfg.defaults.per_channel = false;
  const DebugReport r = debug_quantization(fp32, cfg, stats, noise_batches(3, 8));
  CAPTURE(r.to_text());
  CHECK(r.samples == 24);
  REQUIRE(r.ranked_accumulated().size() >= 4);
  REQUIRE(r.ranked_isolated().size() == 5);  // conv_a, conv_b, conv_c, gap, fc
  CHECK(r.layers[size_t(r.ranked_accumulated()[0])].node == "conv_b");
  CHECK(r.layers[size_t(r.ranked_isolated()[0])].node == "conv_b");
  const LayerDebug& b = layer(r, "conv_b");
  REQUIRE(b.weights);
  CHECK(b.weights->spread > 100);
  CHECK(!b.weights->per_channel);
  bool flagged = false;
  for (const auto& f : b.flags) flagged |= f.find("per-channel weight range") != std::string::npos;
  CHECK(flagged);
  // Output channel 0 of conv_b is always 0 after its ReLU: flagged as constant (degenerate).
  bool degenerate = false;
  for (const auto& f : b.flags) degenerate |= f.find("constant over the data") != std::string::npos;
  CHECK(degenerate);
  // The other layers are ordinary 8-bit layers: well above 25 dB on their own (a layout mix-up
  // in the comparison would put them near 0 dB).
  CHECK(layer(r, "conv_a").accumulated.sqnr_db() > 25);
  CHECK(layer(r, "conv_a").isolated.sqnr_db() > 25);
  CHECK(layer(r, "conv_c").isolated.sqnr_db() > 25);
  CHECK(b.isolated.sqnr_db() < layer(r, "conv_c").isolated.sqnr_db() - 10);

  // Per-channel weights repair conv_b: its isolated damage falls by far.
  quant::QuantConfig pc;
  const DebugReport rp = debug_quantization(fp32, pc, stats, noise_batches(3, 8));
  CHECK(layer(rp, "conv_b").isolated.sqnr_db() > b.isolated.sqnr_db() + 15);

  // JSON carries both rankings and every layer.
  const auto j = r.to_json();
  CHECK(j["ranked_isolated"][0] == "conv_b");
  CHECK(j["layers"].size() == r.layers.size());
}

TEST_CASE("debug: run_watch hands over NCHW values from the channels-last (oneDNN) graph") {
  // The onednn backend runs conv_a / conv_b in NHWC; the reference backend in NCHW. The watched
  // values must agree element by element.
  const Model fast = Model::load_from_memory(outlier_model());
  ModelOptions ro;
  ro.backend = "reference";
  const Model ref = Model::load_from_memory(outlier_model(), ro);
  const std::vector<Tensor> x = {random_tensor({2, 4, 8, 8}, 7)};
  std::map<std::string, Tensor> a, b;
  const std::set<std::string> watch = {"x", "ra", "rb", "f"};
  fast.run_watch(x, watch, [&](const std::string& n, const Tensor& t) { a[n] = t.clone(); });
  ref.run_watch(x, watch, [&](const std::string& n, const Tensor& t) { b[n] = t.clone(); });
  bool lowered = false;
  for (const Node& n : fast.graph().nodes) lowered |= n.op_type == "NhwcConv";
  CHECK(lowered);
  for (const auto& name : watch) {
    CAPTURE(name);
    REQUIRE(a.count(name));
    REQUIRE(b.count(name));
    REQUIRE(a[name].shape() == b[name].shape());
    for (int64_t i = 0; i < a[name].numel(); ++i)
      REQUIRE(a[name].data<float>()[i] ==
              doctest::Approx(b[name].data<float>()[i]).epsilon(1e-4).scale(1e-3));
  }
}

TEST_CASE("debug: --max-drop keeps the damaging layer in FP32; dumps; config file") {
  const Model fp32 = Model::load_from_memory(outlier_model());
  const quant::StatsMap stats = calibrate(fp32);
  quant::QuantConfig cfg;
  cfg.defaults.per_channel = false;
  cfg.defaults.bits_w = 4;
  // Labels = the FP32 model's own predictions: FP32 top-1 is 100 % by construction.
  std::vector<DebugBatch> data;
  for (int i = 0; i < 4; ++i) {
    DebugBatch b;
    // Per sample and channel offsets make the samples (and so the classes) differ.
    Tensor x = random_tensor({16, 4, 8, 8}, 300 + uint64_t(i));
    const Tensor off = random_tensor({16, 4}, 400 + uint64_t(i), 2.0f);
    for (int64_t k = 0; k < x.numel(); ++k) x.data<float>()[k] += off.data<float>()[k / 64];
    b.inputs = {x};
    const Tensor y = fp32.run(b.inputs)[0];
    for (int64_t r = 0; r < 16; ++r) {
      const float* row = y.data<float>() + r * 4;
      b.labels.push_back(int(std::max_element(row, row + 4) - row));
    }
    data.push_back(b);
  }
  const DebugSource src = [&](int64_t i, DebugBatch& b) {
    if (i >= int64_t(data.size())) return false;
    b = data[size_t(i)];
    return true;
  };
  const auto dir = std::filesystem::temp_directory_path() / "engine_debug_dump";
  std::filesystem::remove_all(dir);
  DebugOptions opt;
  opt.dump_dir = dir.string();
  opt.dump_layers = {"conv_b"};
  const DebugReport r = debug_quantization(fp32, cfg, stats, src, opt);
  CHECK(r.fp32_top1 == doctest::Approx(100.0));
  CHECK(r.labeled == 64);
  std::set<int> classes;
  for (const auto& b : data) classes.insert(b.labels.begin(), b.labels.end());
  CHECK(classes.size() >= 3);
  // The dump: conv_b's output ("rb": the ReLU is fused into it), FP32 and dequantized INT8, whose
  // difference is the error the report measured on the first batch.
  const Tensor f = read_npy((dir / "rb.fp32.npy").string());
  const Tensor q = read_npy((dir / "rb.int8.npy").string());
  CHECK(f.shape() == Dims{16, 8, 8, 8});
  REQUIRE(q.shape() == f.shape());
  CHECK(std::filesystem::exists(dir / "rb.q.npy"));
  CHECK(!std::filesystem::exists(dir / "ra.fp32.npy"));
  quant::ErrorStats e;
  e.add(f.data<float>(), q.data<float>(), f.numel());
  CHECK(e.sqnr_db() < layer(r, "conv_c").accumulated.sqnr_db() + 100);  // a real tensor pair
  CHECK(e.sum_err2 > 0);
  std::filesystem::remove_all(dir);

  const double drop = 1.0;
  const MixedPrecisionResult m = keep_sensitive_layers_fp32(fp32, cfg, stats, r, src, drop);
  CHECK(m.fp32_top1 == doctest::Approx(100.0));
  CHECK(m.met);
  CHECK(m.fp32_top1 - m.top1 <= drop);
  REQUIRE(!m.fp32_layers.empty());
  CHECK(m.fp32_layers[0] == "conv_b");
  // The written config, read back through the ordinary config path, reproduces the accuracy.
  const std::string yaml = fp32_layers_config(m.fp32_layers);
  CHECK(yaml.find("match: \"conv_b\"") != std::string::npos);
  const auto file = std::filesystem::temp_directory_path() / "engine_debug_layers.yaml";
  std::ofstream(file) << yaml;
  quant::QuantConfig again = cfg;
  quant::load_config_file(file.string(), again);
  std::filesystem::remove(file);
  CHECK(top1_accuracy(fp32.quantize(again, stats), src) == doctest::Approx(m.top1));
  for (const Node& n : fp32.ir().nodes)
    if (n.name == "conv_b") CHECK(!again.settings_for(n).quantize);
}

// x[N,4,8,8] -> conv a (4 -> 6, activation) -> depthwise conv b (6 ch) + relu -> 1x1 conv c
// (6 -> 3); weight channel ranges made very uneven so equalization has work to do.
std::string pair_model(const char* act) {
  ModelBuilder m;
  m.input("x", {-1, 4, 8, 8});
  m.output("y");
  Tensor wa = random_tensor({6, 4, 3, 3}, 21, 0.3f);
  for (int64_t i = 0; i < wa.numel(); ++i) wa.data<float>()[i] *= float(1 + (i / 36) * 4);
  m.init("wa", wa);
  m.init("ba", random_tensor({6}, 22, 0.2f));
  Tensor wb = random_tensor({6, 1, 3, 3}, 23, 0.3f);
  for (int64_t i = 0; i < wb.numel(); ++i) wb.data<float>()[i] *= i < 9 ? 30.0f : 1.0f;
  m.init("wb", wb);
  m.init("bb", random_tensor({6}, 24, 0.1f));
  m.init("wc", random_tensor({3, 6, 1, 1}, 25, 0.5f));
  auto& a = m.node("Conv", {"x", "wa", "ba"}, {"a"}, "conv_a");
  ModelBuilder::attr_ints(a, "pads", {1, 1, 1, 1});
  if (std::string(act) == "Clip") {
    m.init("lo", Tensor::scalar(0.0f));
    m.init("hi", Tensor::scalar(6.0f));
    m.node("Clip", {"a", "lo", "hi"}, {"ra"}, "act_a");
  } else {
    m.node(act, {"a"}, {"ra"}, "act_a");
  }
  auto& b = m.node("Conv", {"ra", "wb", "bb"}, {"b"}, "conv_b");
  ModelBuilder::attr_ints(b, "pads", {1, 1, 1, 1});
  ModelBuilder::attr_int(b, "group", 6);
  m.node("Relu", {"b"}, {"rb"}, "relu_b");
  m.node("Conv", {"rb", "wc"}, {"y"}, "conv_c");
  return m.bytes();
}

// Largest |w| per output channel (axis 0) and per input channel (axis 1) of a conv's weights.
std::vector<float> in_channel_max(const Tensor& w, int64_t group) {
  const int64_t cin_g = w.dim(1), cout_g = w.dim(0) / group, khw = w.dim(2) * w.dim(3);
  std::vector<float> r(size_t(cin_g * group), 0.0f);
  for (int64_t o = 0; o < w.dim(0); ++o)
    for (int64_t j = 0; j < cin_g; ++j)
      for (int64_t k = 0; k < khw; ++k) {
        float& m = r[size_t((o / cout_g) * cin_g + j)];
        m = std::max(m, std::abs(w.data<float>()[(o * cin_g + j) * khw + k]));
      }
  return r;
}

const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  FAIL("no node ", name);
  return g.nodes.at(0);
}

TEST_CASE("equalize: same function, matched channel ranges, ReLU6 becomes ReLU") {
  const Model fp32 = Model::load_from_memory(pair_model("Relu"));
  quant::EqualizeReport rep;
  const Model eq = fp32.equalize(&rep);
  CHECK(rep.pairs == 2);  // a -> b, b -> c
  CHECK(rep.relu6_replaced == 0);
  const std::vector<Tensor> x = {random_tensor({2, 4, 8, 8}, 9)};
  const Tensor y0 = fp32.run(x)[0], y1 = eq.run(x)[0];
  for (int64_t i = 0; i < y0.numel(); ++i)
    REQUIRE(y1.data<float>()[i] == doctest::Approx(y0.data<float>()[i]).epsilon(1e-4).scale(1e-3));
  // After equalization, output channel i of a and input channel i of b have the same range.
  const Graph& g = eq.ir();
  const Tensor& wa = *g.value(node_named(g, "conv_a").inputs[1]).constant;
  const Tensor& wb = *g.value(node_named(g, "conv_b").inputs[1]).constant;
  const std::vector<float> r1 = quant::channel_abs_max(wa, 0), r2 = in_channel_max(wb, 6);
  for (size_t c = 0; c < r1.size(); ++c) CHECK(r1[c] == doctest::Approx(r2[c]).epsilon(1e-3));
  // The original model's weights are untouched (tensors share buffers between graph copies).
  const Tensor& wa0 = *fp32.ir().value(node_named(fp32.ir(), "conv_a").inputs[1]).constant;
  CHECK(quant::channel_abs_max(wa0, 0) != r1);
  // Per-tensor weights: the depthwise layer's spread shrinks, so its quantization error falls.
  const std::vector<float> rb0 = quant::channel_abs_max(
      *fp32.ir().value(node_named(fp32.ir(), "conv_b").inputs[1]).constant, 0);
  const std::vector<float> rb1 = quant::channel_abs_max(wb, 0);
  auto spread = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v.back() / v[v.size() / 2];
  };
  CHECK(spread(rb1) < spread(rb0) / 2);

  const Model clip = Model::load_from_memory(pair_model("Clip"));
  quant::EqualizeReport rc;
  const Model eqc = clip.equalize(&rc);
  CHECK(rc.relu6_replaced == 1);
  CHECK(node_named(eqc.ir(), "conv_a").attrs.get_string("activation", "") == "Relu");
  // Sigmoid does not commute with scaling: that pair is left alone.
  quant::EqualizeReport rs;
  Model::load_from_memory(pair_model("Sigmoid")).equalize(&rs);
  CHECK(rs.pairs == 1);  // only b -> c
}

TEST_CASE("bias correction removes the mean output error of coarse weights") {
  const Model fp32 = Model::load_from_memory(pair_model("Relu"));
  int k = 0;
  const quant::StatsMap stats = fp32.calibrate(
      [&](std::vector<Tensor>& in) {
        if (k >= 4) return false;
        in = {random_tensor({8, 4, 8, 8}, 500 + uint64_t(k++))};
        return true;
      },
      quant::StatsOptions{});
  // The inputs of every conv carry per-channel means (for the correction).
  CHECK(stats.at("x").channel_mean().size() == 4);
  CHECK(stats.at("ra").channel_mean().size() == 6);
  quant::QuantConfig cfg;
  cfg.defaults.bits_w = 3;
  cfg.defaults.per_channel = false;
  quant::QuantConfig bc = cfg;
  bc.bias_correct = true;
  // Mean (over samples and positions) of y_int8 - y_fp32 per output channel, on new data.
  auto mean_error = [&](const quant::QuantConfig& c) {
    const Model q = fp32.quantize(c, stats);
    double worst = 0;
    const std::vector<Tensor> x = {random_tensor({16, 4, 8, 8}, 600)};
    const Tensor yf = fp32.run(x)[0], yq = q.run(x)[0];
    const int64_t C = yf.dim(1), inner = yf.dim(2) * yf.dim(3);
    for (int64_t ch = 0; ch < C; ++ch) {
      double s = 0;
      for (int64_t n = 0; n < yf.dim(0); ++n)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t e = (n * C + ch) * inner + i;
          s += double(yq.data<float>()[e]) - double(yf.data<float>()[e]);
        }
      worst = std::max(worst, std::abs(s / double(yf.dim(0) * inner)));
    }
    return worst;
  };
  const double before = mean_error(cfg), after = mean_error(bc);
  CAPTURE(before);
  CAPTURE(after);
  CHECK(after < before / 2);
}

}  // namespace
}  // namespace engine::test
