#include "engine/debug.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "frontend/npy.h"

namespace engine {

namespace {

using quant::ErrorStats;

bool is_compute_op(const std::string& op) {
  static const std::set<std::string> ops = {"Conv",      "FusedConv",   "Gemm",
                                            "FusedGemm", "MatMul",      "Add",
                                            "Concat",    "AveragePool", "GlobalAveragePool"};
  return ops.count(op) > 0;
}

// Argmax per row of a [N, C] (or [N, C, 1, 1]) float output; empty if it is not one.
std::vector<int64_t> argmax_rows(const Tensor& t) {
  if (t.dtype() != DType::F32 || t.rank() < 2) return {};
  const int64_t rows = t.dim(0), cols = t.numel() / std::max<int64_t>(1, rows);
  if (cols < 2 || t.dim(1) != cols) return {};
  std::vector<int64_t> r(static_cast<size_t>(rows));
  const float* d = t.data<float>();
  for (int64_t i = 0; i < rows; ++i)
    r[size_t(i)] = std::max_element(d + i * cols, d + (i + 1) * cols) - (d + i * cols);
  return r;
}

// Correct predictions and labeled samples of one batch.
void count_correct(const Tensor& out, const std::vector<int>& labels, int64_t& correct,
                   int64_t& labeled) {
  const std::vector<int64_t> pred = argmax_rows(out);
  for (size_t i = 0; i < labels.size() && i < pred.size(); ++i)
    if (labels[i] >= 0) {
      ++labeled;
      correct += pred[i] == labels[i];
    }
}

double percent(int64_t a, int64_t b) {
  return b > 0 ? 100.0 * double(a) / double(b) : -1;
}

// cfg with every node in FP32 except `node` (the user's per-layer settings kept).
quant::QuantConfig only_layer(const quant::QuantConfig& cfg, const std::string& node) {
  quant::QuantConfig c = cfg;
  c.defaults.quantize = false;
  for (auto& l : c.layers) l.quantize.reset();
  quant::LayerOverride o;
  o.match = node;
  o.quantize = true;
  c.layers.push_back(o);
  return c;
}

const Node* find_node(const Graph& g, const std::string& name, const std::string& op) {
  for (const Node& n : g.nodes)
    if (n.name == name && n.op_type == op) return &n;
  return nullptr;
}

void say(const DebugOptions& opt, const std::string& s) {
  if (opt.progress) opt.progress(s);
}

}  // namespace

double top1_accuracy(const Model& m, const DebugSource& data, int64_t* labeled) {
  int64_t correct = 0, seen = 0;
  DebugBatch b;
  for (int64_t i = 0; data(i, b); ++i) {
    const std::vector<Tensor> out = m.run(b.inputs);
    count_correct(out.at(0), b.labels, correct, seen);
    b = {};
  }
  if (labeled) *labeled = seen;
  return percent(correct, seen);
}

DebugReport debug_quantization(const Model& fp32, const quant::QuantConfig& cfg,
                               const quant::StatsMap& stats, const DebugSource& data,
                               const DebugOptions& opt) {
  ENGINE_CHECK(!fp32.is_quantized(),
               "engine debug compares an FP32 model with its quantization; "
               "this model is already quantized");
  QuantizeReport rep;
  const Model q = fp32.quantize(cfg, stats, {}, &rep);
  const Graph& fg = fp32.ir();
  const Graph& qg = q.ir();

  // Watched values: every float value that also exists quantized.
  std::set<std::string> fwatch, qwatch;
  std::map<std::string, std::string> float_of;  // quantized name -> float name
  std::map<std::string, QuantParams> qparams;
  for (const auto& [f, qn] : rep.quantized_values) {
    const int id = qg.find_value(qn);
    if (id < 0 || qg.value(id).quant.scale.size() != 1) continue;
    fwatch.insert(f);
    qwatch.insert(qn);
    float_of[qn] = f;
    qparams[qn] = qg.value(id).quant;
  }

  DebugReport r;
  std::map<std::string, int> layer_of_value;
  ENGINE_CHECK(rep.decisions.size() == fg.nodes.size(), "internal: ", rep.decisions.size(),
               " quantization decisions for ", fg.nodes.size(), " nodes");
  for (size_t i = 0; i < fg.nodes.size(); ++i) {
    const Node& n = fg.nodes[i];
    if (!rep.decisions[i].quantized || n.outputs.empty() || n.outputs[0] < 0) continue;
    const std::string& v = fg.value(n.outputs[0]).name;
    if (!fwatch.count(v)) continue;
    LayerDebug l;
    l.node = n.name;
    l.op_type = n.op_type;
    l.value = v;
    l.index = int(i);
    l.compute = is_compute_op(n.op_type);
    layer_of_value[v] = int(r.layers.size());
    r.layers.push_back(std::move(l));
  }
  std::set<std::string> dump;
  if (!opt.dump_dir.empty()) {
    std::filesystem::create_directories(opt.dump_dir);
    for (const auto& l : r.layers) {
      bool want = opt.dump_layers.empty();
      for (const auto& d : opt.dump_layers) want = want || d == l.node || d == l.value;
      if (want) dump.insert(l.value);
    }
    for (const auto& d : opt.dump_layers) {
      bool found = false;
      for (const auto& l : r.layers) found = found || d == l.node || d == l.value;
      ENGINE_CHECK(found, "--layers: '", d, "' is not a quantized layer of this model");
    }
  }

  // Accumulated mode: both models on every batch.
  say(opt, str_cat("comparing ", r.layers.size(), " quantized layer outputs, whole graph INT8"));
  std::map<std::string, ErrorStats> err;  // per float value
  int64_t fc = 0, qc = 0;
  DebugBatch b;
  for (int64_t bi = 0; data(bi, b); ++bi) {
    std::map<std::string, Tensor> ref;
    const std::vector<Tensor> fo =
        fp32.run_watch(b.inputs, fwatch, [&](const std::string& name, const Tensor& t) {
          if (t.dtype() != DType::F32) return;
          ref[name] = t.clone();
          auto it = layer_of_value.find(name);
          if (it != layer_of_value.end()) {
            LayerDebug& l = r.layers[size_t(it->second)];
            quant::channel_min_max(t, l.act_min, l.act_max);
          }
        });
    const std::vector<Tensor> qo =
        q.run_watch(b.inputs, qwatch, [&](const std::string& name, const Tensor& t) {
          const std::string& f = float_of.at(name);
          auto it = ref.find(f);
          if (it == ref.end() || it->second.numel() != t.numel()) return;
          const QuantParams& p = qparams.at(name);
          const Tensor d = quant::dequantize_per_tensor(t, p.scale[0], p.zero_point.at(0));
          err[f].add(it->second.data<float>(), d.data<float>(), d.numel());
          if (bi == 0 && dump.count(f)) {
            const std::string base =
                (std::filesystem::path(opt.dump_dir) / npy_file_stem(f)).string();
            write_npy(base + ".fp32.npy", it->second);
            write_npy(base + ".int8.npy", d);
            write_npy(base + ".q.npy", t);
          }
        });
    ENGINE_CHECK(!fo.empty() && fo[0].dtype() == DType::F32 && qo[0].numel() == fo[0].numel(),
                 "the first model output is not a float tensor of the same size in both models");
    r.final_output.add(fo[0].data<float>(), qo[0].data<float>(), fo[0].numel());
    r.samples += b.inputs.empty() || b.inputs[0].rank() == 0 ? 1 : b.inputs[0].dim(0);
    int64_t lab = 0;
    count_correct(fo[0], b.labels, fc, lab);
    count_correct(qo[0], b.labels, qc, r.labeled);
    b = {};
  }
  ENGINE_CHECK(r.samples > 0, "engine debug received no data");
  r.fp32_top1 = percent(fc, r.labeled);
  r.int8_top1 = percent(qc, r.labeled);
  for (LayerDebug& l : r.layers) {
    l.accumulated = err[l.value];
    const Node& n = fg.nodes[size_t(l.index)];
    double in = ErrorStats::kExactDb;
    for (int v : n.inputs)
      if (v >= 0 && err.count(fg.value(v).name)) in = std::min(in, err[fg.value(v).name].sqnr_db());
    l.input_sqnr_db = in;
    // Weights, as the quantizer stored them.
    const bool conv = l.op_type == "Conv" || l.op_type == "FusedConv";
    const bool gemm = l.op_type == "Gemm" || l.op_type == "FusedGemm";
    if ((conv || gemm) && n.inputs.size() > 1 && fg.is_constant(n.inputs[1])) {
      const Node* qn = find_node(qg, n.name, conv ? "QConv" : "QGemm");
      if (qn && qn->inputs.size() > 5 && qg.is_constant(qn->inputs[3]) &&
          qg.is_constant(qn->inputs[4]) && qg.is_constant(qn->inputs[5])) {
        const int axis = conv ? 0 : (n.attrs.get_int("transB", 0) ? 0 : 1);
        l.weights = quant::analyze_weights(
            *fg.value(n.inputs[1]).constant, *qg.value(qn->inputs[3]).constant,
            *qg.value(qn->inputs[4]).constant, *qg.value(qn->inputs[5]).constant, axis);
      }
    }
    // Calibration histogram (cropped to the data, 96 bins) and the chosen clipping range.
    auto st = stats.find(l.value);
    if (st != stats.end() && st->second.count() > 0 && st->second.hist_range() > 0) {
      const quant::TensorStats& ts = st->second;
      const auto& h = ts.hist();
      const double R = ts.hist_range(), w = 2 * R / double(h.size());
      l.hist_lo = ts.min();
      l.hist_hi = std::max(ts.max(), ts.min() + w);
      const int bins = 96;
      l.hist.assign(bins, 0);
      for (size_t k = 0; k < h.size(); ++k) {
        if (!h[k]) continue;
        const double centre = -R + (double(k) + 0.5) * w;
        const int b =
            std::clamp(int((centre - l.hist_lo) / (l.hist_hi - l.hist_lo) * bins), 0, bins - 1);
        l.hist[size_t(b)] += h[k];
      }
    }
    if (rep.chosen.contains(l.value)) {
      const auto& c = rep.chosen[l.value];
      l.clip_lo = c["range"][0].get<double>();
      l.clip_hi = c["range"][1].get<double>();
      l.observer = c.value("observer", "");
    }
    // Warnings with reasons.
    if (l.weights) {
      const auto& w = *l.weights;
      if (w.zero_channels > 0)
        l.flags.push_back(str_cat(w.zero_channels, " of ", w.channels,
                                  " weight channels are all zero (degenerate: dead filters)"));
      if (w.spread > opt.spread_warning)
        l.flags.push_back(str_cat("wide per-channel weight range: largest channel ",
                                  std::setprecision(3), w.spread, "x the median",
                                  w.per_channel
                                      ? " (per-channel scales absorb it)"
                                      : "; per-tensor scales waste bits on most channels: "
                                        "use per-channel weights or --equalize"));
    }
    if (!l.act_max.empty()) {
      std::vector<float> span(l.act_max.size());
      int64_t constant = 0;
      for (size_t c = 0; c < span.size(); ++c) {
        span[c] = std::max(std::abs(l.act_max[c]), std::abs(l.act_min[c]));
        constant += l.act_max[c] == l.act_min[c];
      }
      std::vector<float> s = span;
      std::sort(s.begin(), s.end());
      const double med = s[s.size() / 2], top = s.back();
      if (constant > 0 && span.size() > 1)
        l.flags.push_back(str_cat(constant, " of ", span.size(),
                                  " output channels are constant over the data (degenerate)"));
      if (med > 0 && top / med > opt.spread_warning) {
        const size_t c = size_t(std::max_element(span.begin(), span.end()) - span.begin());
        l.flags.push_back(str_cat("outlier output channel ", c, ": range ", std::setprecision(3),
                                  top, " vs median ", med,
                                  " (one per-tensor activation scale for all channels)"));
      }
    }
    // Low SQNR that this layer causes (not only inherits from its inputs).
    if (l.accumulated.count > 0 && l.accumulated.sqnr_db() < opt.sqnr_warning_db && l.lost_db() > 3)
      l.flags.push_back(str_cat("low SQNR ", std::fixed, std::setprecision(1),
                                l.accumulated.sqnr_db(), " dB, ", l.lost_db(),
                                " dB of it lost in this layer"));
  }

  if (!opt.isolated) return r;
  int done = 0, total = 0;
  for (const LayerDebug& l : r.layers) total += l.compute;
  // The FP32 model runs again for every layer: keeping every layer's FP32 output for all
  // samples instead would cost memory in proportion to the whole network's activations.
  for (LayerDebug& l : r.layers) {
    if (!l.compute) continue;
    say(opt, str_cat("isolated ", ++done, "/", total, ": ", l.node));
    QuantizeReport ri;
    const Model qi = fp32.quantize(only_layer(cfg, l.node), stats, {}, &ri);
    auto it = ri.quantized_values.find(l.value);
    if (it == ri.quantized_values.end()) continue;
    const int id = qi.ir().find_value(it->second);
    if (id < 0 || qi.ir().value(id).quant.scale.size() != 1) continue;
    const QuantParams p = qi.ir().value(id).quant;
    int64_t correct = 0, labeled = 0;
    for (int64_t bi = 0; data(bi, b); ++bi) {
      Tensor ref;
      const std::vector<Tensor> fo = fp32.run_watch(
          b.inputs, {l.value}, [&](const std::string&, const Tensor& t) { ref = t.clone(); });
      const std::vector<Tensor> qo =
          qi.run_watch(b.inputs, {it->second}, [&](const std::string&, const Tensor& t) {
            if (!ref.defined() || ref.numel() != t.numel()) return;
            const Tensor d = quant::dequantize_per_tensor(t, p.scale[0], p.zero_point.at(0));
            l.isolated.add(ref.data<float>(), d.data<float>(), d.numel());
          });
      l.isolated_final.add(fo[0].data<float>(), qo[0].data<float>(), fo[0].numel());
      count_correct(qo[0], b.labels, correct, labeled);
      b = {};
    }
    l.has_isolated = true;
    l.isolated_top1 = percent(correct, labeled);
  }
  return r;
}

std::vector<int> DebugReport::ranked_accumulated() const {
  std::vector<int> idx;
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].accumulated.count > 0) idx.push_back(int(i));
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    return layers[size_t(a)].lost_db() > layers[size_t(b)].lost_db();
  });
  return idx;
}

std::vector<int> DebugReport::ranked_isolated() const {
  std::vector<int> idx;
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].has_isolated) idx.push_back(int(i));
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    return layers[size_t(a)].isolated_final.sqnr_db() < layers[size_t(b)].isolated_final.sqnr_db();
  });
  return idx;
}

nlohmann::json DebugReport::to_json() const {
  nlohmann::json j;
  j["samples"] = samples;
  j["labeled"] = labeled;
  if (labeled > 0) {
    j["fp32_top1"] = fp32_top1;
    j["int8_top1"] = int8_top1;
  }
  j["final_output"] = final_output.to_json();
  nlohmann::json ls = nlohmann::json::array();
  for (const LayerDebug& l : layers) {
    nlohmann::json o;
    o["node"] = l.node;
    o["op_type"] = l.op_type;
    o["value"] = l.value;
    o["accumulated"] = l.accumulated.to_json();
    o["accumulated"]["input_sqnr_db"] = l.input_sqnr_db;
    o["accumulated"]["lost_db"] = l.lost_db();
    if (l.has_isolated) {
      o["isolated"] = l.isolated.to_json();
      o["isolated"]["final_output"] = l.isolated_final.to_json();
      if (l.isolated_top1 >= 0) o["isolated"]["top1"] = l.isolated_top1;
    }
    if (l.weights) {
      const auto& w = *l.weights;
      o["weights"] = {{"channels", w.channels},     {"per_channel", w.per_channel},
                      {"range_spread", w.spread},   {"zero_channels", w.zero_channels},
                      {"error", w.error.to_json()}, {"channel_abs_max", w.channel_max}};
    }
    if (!l.act_max.empty()) {
      o["output_channel_min"] = l.act_min;
      o["output_channel_max"] = l.act_max;
    }
    o["flags"] = l.flags;
    ls.push_back(std::move(o));
  }
  j["layers"] = std::move(ls);
  nlohmann::json ra = nlohmann::json::array(), ri = nlohmann::json::array();
  for (int i : ranked_accumulated()) ra.push_back(layers[size_t(i)].node);
  for (int i : ranked_isolated()) ri.push_back(layers[size_t(i)].node);
  j["ranked_accumulated"] = std::move(ra);
  j["ranked_isolated"] = std::move(ri);
  return j;
}

std::string DebugReport::to_text(int top) const {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  o << "samples: " << samples;
  if (labeled > 0)
    o << "; top-1 FP32 " << fp32_top1 << " %, INT8 " << int8_top1 << " % (" << labeled
      << " labeled)";
  o << "\nfinal output: SQNR " << final_output.sqnr_db() << " dB, cosine " << std::setprecision(5)
    << final_output.cosine() << std::setprecision(2) << ", max |error| " << final_output.max_abs
    << "\n";
  auto name = [](const std::string& s) {
    return s.size() <= 44 ? s : "..." + s.substr(s.size() - 41);
  };
  const std::vector<int> ra = ranked_accumulated();
  o << "\naccumulated (whole graph INT8), most damaging first (dB lost = input SQNR - output "
       "SQNR):\n";
  o << std::left << std::setw(5) << "rank" << std::setw(46) << "layer" << std::setw(18) << "op"
    << std::right << std::setw(9) << "SQNR dB" << std::setw(9) << "lost dB" << std::setw(10)
    << "cosine" << std::setw(12) << "MSE" << std::setw(10) << "max err" << std::setw(10)
    << "w spread" << std::setw(10) << "w SQNR"
    << "\n";
  int k = 0;
  for (int i : ra) {
    if (top > 0 && k >= top) break;
    const LayerDebug& l = layers[size_t(i)];
    o << std::left << std::setw(5) << ++k << std::setw(46) << name(l.node) << std::setw(18)
      << l.op_type << std::right << std::setw(9) << l.accumulated.sqnr_db() << std::setw(9)
      << l.lost_db() << std::setw(10) << std::setprecision(5) << l.accumulated.cosine()
      << std::setw(12) << std::scientific << std::setprecision(3) << l.accumulated.mse()
      << std::fixed << std::setprecision(3) << std::setw(10) << l.accumulated.max_abs
      << std::setprecision(2);
    if (l.weights)
      o << std::setw(10) << l.weights->spread << std::setw(10) << l.weights->error.sqnr_db();
    o << "\n";
  }
  const std::vector<int> ri = ranked_isolated();
  if (!ri.empty()) {
    o << "\nisolated (one layer INT8, the rest FP32), most damaging first:\n";
    o << std::left << std::setw(5) << "rank" << std::setw(46) << "layer" << std::setw(18) << "op"
      << std::right << std::setw(10) << "layer dB" << std::setw(10) << "final dB" << std::setw(12)
      << "final cos";
    if (labeled > 0) o << std::setw(10) << "top-1 %" << std::setw(8) << "change";
    o << "\n";
    k = 0;
    for (int i : ri) {
      if (top > 0 && k >= top) break;
      const LayerDebug& l = layers[size_t(i)];
      o << std::left << std::setw(5) << ++k << std::setw(46) << name(l.node) << std::setw(18)
        << l.op_type << std::right << std::setw(10) << l.isolated.sqnr_db() << std::setw(10)
        << l.isolated_final.sqnr_db() << std::setw(12) << std::setprecision(6)
        << l.isolated_final.cosine() << std::setprecision(2);
      if (labeled > 0 && l.isolated_top1 >= 0)
        o << std::setw(10) << l.isolated_top1 << std::setw(8) << std::showpos
          << l.isolated_top1 - fp32_top1 << std::noshowpos;
      o << "\n";
    }
  }
  bool any = false;
  for (const LayerDebug& l : layers)
    for (const auto& f : l.flags) {
      if (!any) o << "\nwarnings:\n";
      any = true;
      o << "  " << l.node << ": " << f << "\n";
    }
  return o.str();
}

std::string fp32_layers_config(const std::vector<std::string>& layers) {
  std::ostringstream o;
  o << "# Written by `engine debug --max-drop`: the layers kept in FP32.\n"
    << "# Use with `engine quantize --config FILE` (same quantization flags as the debug run).\n"
    << "layers:\n";
  if (layers.empty()) o << "  []\n";
  for (const auto& l : layers)
    o << "  - match: " << nlohmann::json(l).dump() << "\n    quantize: false\n";
  return o.str();
}

MixedPrecisionResult keep_sensitive_layers_fp32(const Model& fp32, const quant::QuantConfig& cfg,
                                                const quant::StatsMap& stats,
                                                const DebugReport& report, const DebugSource& data,
                                                double max_drop, const DebugOptions& opt) {
  MixedPrecisionResult res;
  int64_t labeled = 0;
  res.fp32_top1 = top1_accuracy(fp32, data, &labeled);
  ENGINE_CHECK(labeled > 0, "--max-drop needs labeled data (--data with labels)");
  const std::vector<int> order = report.ranked_isolated();
  ENGINE_CHECK(!order.empty() || report.layers.empty(),
               "--max-drop needs the isolated mode (do not give --no-isolated)");
  res.config = cfg;
  for (size_t step = 0;; ++step) {
    const Model m = fp32.quantize(res.config, stats);
    res.top1 = top1_accuracy(m, data);
    if (step == 0) res.int8_top1 = res.top1;
    if (step > 0) res.steps.emplace_back(res.fp32_layers.back(), res.top1);
    say(opt, str_cat("--max-drop: ", res.fp32_layers.size(), " layers in FP32, top-1 ", res.top1,
                     " % (FP32 ", res.fp32_top1, " %)"));
    if (res.fp32_top1 - res.top1 <= max_drop) {
      res.met = true;
      break;
    }
    if (step >= order.size()) break;
    const std::string& node = report.layers[size_t(order[step])].node;
    res.fp32_layers.push_back(node);
    quant::LayerOverride o;
    o.match = node;
    o.quantize = false;
    res.config.layers.push_back(o);
  }
  return res;
}

}  // namespace engine
