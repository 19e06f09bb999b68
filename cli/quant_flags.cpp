#include "cli/quant_flags.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/inputs.h"
#include "frontend/dataset.h"
#include "frontend/tensor_proto.h"

namespace engine::cli {

void QuantFlags::add(CLI::App* cmd) {
  const char* g = "Quantization (with --int8)";
  cmd->add_option("--calib", calib,
                  "Calibration data: image folder, 'path label' list, IDX images or .npy")
      ->group(g);
  cmd->add_option("--calib-size", calib_size, "Use the first N calibration items")
      ->check(CLI::NonNegativeNumber)
      ->group(g);
  cmd->add_option("--calib-fraction", calib_fraction,
                  "Use a seeded random fraction F of the calibration items")
      ->check(CLI::Range(0.0, 1.0))
      ->group(g);
  cmd->add_option("--calib-noise", calib_noise,
                  "Calibrate on N standard-normal inputs of the model's input shape (seeded)")
      ->check(CLI::NonNegativeNumber)
      ->group(g);
  cmd->add_option("--calib-batch", calib_batch, "Calibration batch size")
      ->check(CLI::PositiveNumber)
      ->group(g);
  cmd->add_option("--calib-seed", calib_seed, "Seed for --calib-fraction and --calib-noise")
      ->group(g);
  std::string names;
  for (const auto& o : quant::all_observers()) names += (names.empty() ? "" : "|") + o.name;
  cmd->add_option("--observer", observer, "Activation observer: " + names)->group(g);
  cmd->add_option("--weight-observer", weight_observer, "Weight observer: " + names)->group(g);
  cmd->add_option("--alpha", alpha, "ema observer: smoothing factor (ema = a*ema + (1-a)*new)")
      ->check(CLI::Range(0.0, 1.0))
      ->group(g);
  cmd->add_option("--ema-per", ema_per, "ema observer: update per 'batch' or per 'sample'")
      ->check(CLI::IsMember({"batch", "sample"}))
      ->group(g);
  cmd->add_option("--percentile", percentile, "percentile observer: e.g. 99.99")
      ->check(CLI::Range(50.0, 100.0))
      ->group(g);
  cmd->add_option("--n-std", n_std, "n_std observer: mean +- N standard deviations")
      ->check(CLI::PositiveNumber)
      ->group(g);
  cmd->add_flag("--per-tensor", per_tensor, "One weight scale per tensor (default: per channel)")
      ->group(g);
  cmd->add_option("--bits-w", bits_w, "Weight bits (2..8)")->check(CLI::Range(2, 8))->group(g);
  cmd->add_option("--bits-a", bits_a, "Activation bits (2..8)")->check(CLI::Range(2, 8))->group(g);
  cmd->add_option("--mode-w", mode_w, "Weights: sym | asym_u | asym_s")
      ->check(CLI::IsMember({"sym", "asym_u", "asym_s"}))
      ->group(g);
  cmd->add_option("--mode-a", mode_a, "Activations: asym_u (uint8) | asym_s | sym (int8)")
      ->check(CLI::IsMember({"sym", "asym_u", "asym_s"}))
      ->group(g);
  cmd->add_flag("--reduce-range", reduce_range, "Weights use one bit less (7-bit)")->group(g);
  cmd->add_option("--requant", requant,
                  "Requantization: fixed (int32 multiplier + shift) | float (ONNX QLinearConv)")
      ->check(CLI::IsMember({"fixed", "float"}))
      ->group(g);
  cmd->add_option("--scale-bits", scale_bits, "Bits of the fixed-point multiplier (1..31)")
      ->check(CLI::Range(1, 31))
      ->group(g);
  cmd->add_option("--stats-out", stats_out, "Write calibration statistics and ranges (JSON)")
      ->group(g);
  cmd->add_option("--stats-in", stats_in, "Read calibration statistics instead of calibrating")
      ->group(g);
  cmd->add_option("--config", config, "Per-layer overrides (JSON or YAML)")->group(g);
  cmd->add_option("--exclude", exclude, "Keep nodes in FP32: names, op types or globs")
      ->delimiter(',')
      ->group(g);
  cmd->add_flag("--keep-first-last-fp32", keep_first_last,
                "Keep the first and last Conv/Gemm in FP32")
      ->group(g);
  cmd->add_option("--quantize-from", quantize_from, "Nodes before this one stay FP32")->group(g);
  cmd->add_flag("--equalize", equalize,
                "Cross-layer equalization: rescale the channels of consecutive convs so their "
                "weight ranges match (helps per-tensor weights, depthwise layers); ReLU6 between "
                "them becomes ReLU")
      ->group(g);
  cmd->add_flag("--bias-correct", bias_correct,
                "Bias correction: subtract the expected output error of the quantized weights "
                "(from the calibration inputs' channel means) from each layer's bias")
      ->group(g);
  cmd->add_flag("--quant-report", report, "Print every node's INT8/FP32 decision")->group(g);
}

quant::QuantConfig QuantFlags::config_from_flags() const {
  quant::QuantConfig c;
  c.defaults.bits_w = bits_w;
  c.defaults.bits_a = bits_a;
  c.defaults.mode_w = quant::parse_qmode(mode_w);
  c.defaults.mode_a = quant::parse_qmode(mode_a);
  c.defaults.observer = observer;
  c.defaults.weight_observer = weight_observer;
  c.defaults.per_channel = !per_tensor;
  c.observer_options.percentile = percentile;
  c.observer_options.n_std = n_std;
  c.stats_options.ema_alpha = alpha;
  c.stats_options.ema_per_sample = ema_per == "sample";
  c.reduce_range = reduce_range;
  c.requant = requant == "float" ? quant::RequantMode::Float : quant::RequantMode::Fixed;
  c.scale_bits = scale_bits;
  c.exclude = exclude;
  c.keep_first_last_fp32 = keep_first_last;
  c.quantize_from = quantize_from;
  c.equalize = equalize;
  c.bias_correct = bias_correct;
  if (!config.empty()) quant::load_config_file(config, c);
  c.validate();
  return c;
}

namespace {

// Calibration batches from a data set (first N, or a seeded fraction) or Gaussian noise.
BatchSource make_source(const Model& m, const QuantFlags& q, const PreprocessFlags& pre,
                        int64_t& total, std::string& what) {
  const auto shapes = m.concrete_input_shapes(q.calib_batch);
  const int64_t batch = shapes.at(0).empty() ? 1 : shapes[0][0];
  if (q.calib_noise > 0) {
    total = q.calib_noise;
    what = str_cat(total, " Gaussian-noise inputs (seed ", q.calib_seed, ")");
    auto rng = std::make_shared<std::mt19937_64>(q.calib_seed);
    auto done = std::make_shared<int64_t>(0);
    return [=, &m](std::vector<Tensor>& inputs) {
      if (*done >= total) return false;
      const int64_t n = std::min(batch, total - *done);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (size_t i = 0; i < m.inputs().size(); ++i) {
        Dims d = shapes[i];
        if (!d.empty() && m.inputs()[i].shape[0] < 0) d[0] = n;
        Tensor t(DType::F32, d);
        for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = nd(*rng);
        inputs.push_back(std::move(t));
      }
      *done += n;
      return true;
    };
  }
  ENGINE_CHECK(m.inputs().size() == 1,
               "calibration data from files needs a single-input model; "
               "use --calib-noise or --stats-in");
  auto ds = std::make_shared<Dataset>(Dataset::open(q.calib, "", make_preprocess(pre, m)));
  ENGINE_CHECK(ds->size() > 0, q.calib, ": no calibration items");
  auto order = std::make_shared<std::vector<int64_t>>(size_t(ds->size()));
  std::iota(order->begin(), order->end(), 0);
  int64_t n = ds->size();
  if (q.calib_fraction > 0) {
    std::mt19937_64 rng(q.calib_seed);
    std::shuffle(order->begin(), order->end(), rng);
    n = std::max<int64_t>(1, int64_t(std::llround(q.calib_fraction * double(n))));
    order->resize(size_t(n));
    std::sort(order->begin(), order->end());
  }
  if (q.calib_size > 0) n = std::min(n, q.calib_size);
  total = n;
  what = str_cat(n, " items of ", q.calib);
  auto pos = std::make_shared<int64_t>(0);
  const bool fixed_batch = !m.inputs()[0].shape.empty() && m.inputs()[0].shape[0] > 0;
  return [=](std::vector<Tensor>& inputs) {
    if (*pos >= n) return false;
    const int64_t count = std::min(fixed_batch ? batch : q.calib_batch, n - *pos);
    std::vector<Tensor> items;
    Dims d;
    for (int64_t k = 0; k < count; ++k) {
      items.push_back(ds->image((*order)[size_t(*pos + k)]));
      if (k == 0) d = items[0].shape();
      ENGINE_CHECK(items.back().shape() == d, ds->item_name((*order)[size_t(*pos + k)]),
                   ": preprocessed to ", dims_str(items.back().shape()), ", expected ",
                   dims_str(d));
    }
    Dims bd{fixed_batch ? batch : count};
    bd.insert(bd.end(), d.begin(), d.end());
    Tensor t(DType::F32, bd);  // zero-filled beyond `count` for fixed-batch models
    const int64_t per = items[0].numel();
    for (int64_t k = 0; k < count; ++k)
      std::copy(items[size_t(k)].data<float>(), items[size_t(k)].data<float>() + per,
                t.data<float>() + k * per);
    inputs.push_back(std::move(t));
    *pos += count;
    return true;
  };
}

}  // namespace

Model quantize_with_flags(const Model& fp32, const QuantFlags& q, const PreprocessFlags& pre,
                          bool quiet, QuantizeReport* report) {
  if (fp32.is_quantized()) {
    if (!quiet) std::cerr << "note: the model is already quantized; --int8 runs it as it is\n";
    return fp32;
  }
  const quant::QuantConfig cfg = q.config_from_flags();
  QuantizeReport local;
  QuantizeReport& rep = report ? *report : local;
  Model m = fp32;
  std::string what;
  if (!q.stats_in.empty()) {
    ENGINE_CHECK(q.calib.empty() && q.calib_noise == 0,
                 "--stats-in replaces calibration: do not also give --calib / --calib-noise");
    std::map<std::string, quant::Range> overrides;
    int64_t samples = 0;
    const quant::StatsMap stats = quant::read_stats_file(q.stats_in, &overrides, &samples);
    m = fp32.quantize(cfg, stats, overrides, &rep);
    rep.samples = samples;
    what = q.stats_in;
  } else {
    ENGINE_CHECK(!q.calib.empty() || q.calib_noise > 0,
                 "--int8 needs calibration data: --calib DIR|LIST|IDX|NPY, --calib-noise N, or "
                 "--stats-in FILE (or a model saved by `engine quantize`)");
    int64_t total = 0;
    BatchSource src = make_source(fp32, q, pre, total, what);
    const bool progress = !quiet && isatty(STDERR_FILENO);
    int64_t seen = 0;
    BatchSource counted = [&](std::vector<Tensor>& in) {
      if (!src(in)) return false;
      seen += in.empty() || in[0].rank() == 0 ? 1 : std::min(in[0].dim(0), total - seen);
      if (progress) {
        const int width = 30,
                  filled = int(width * std::min(seen, total) / std::max<int64_t>(1, total));
        std::cerr << "\rcalibrating [" << std::string(size_t(filled), '=')
                  << std::string(size_t(width - filled), ' ') << "] " << seen << "/" << total
                  << std::flush;
      }
      return true;
    };
    m = fp32.quantize(cfg, counted, &rep);
    if (progress) std::cerr << "\n";
  }
  if (!q.stats_out.empty()) {
    write_file_atomic(q.stats_out,
                      quant::stats_to_json(rep.stats, rep.samples, rep.chosen).dump(1));
  }
  if (!quiet) {
    int nq = 0;
    std::ostringstream fp;
    for (const auto& d : rep.decisions) {
      if (d.quantized) {
        ++nq;
      } else if (d.op_type != "Shape" && d.op_type != "Constant") {
        fp << "\n  " << d.op_type << " '" << d.name << "': " << d.reason;
      }
    }
    std::cerr << "quantized " << nq << "/" << rep.decisions.size()
              << " nodes (calibration: " << what << "; observer " << cfg.defaults.observer << ", W"
              << cfg.defaults.bits_w << "A" << cfg.defaults.bits_a << ", "
              << (cfg.defaults.per_channel ? "per-channel" : "per-tensor") << " weights); "
              << rep.quantize_nodes << " QuantizeLinear, " << rep.dequantize_nodes
              << " DequantizeLinear inserted";
    if (q.report) std::cerr << "\nFP32 nodes:" << fp.str();
    std::cerr << "\n";
    if (!q.stats_out.empty()) std::cerr << "wrote " << q.stats_out << "\n";
  }
  return m;
}

}  // namespace engine::cli
