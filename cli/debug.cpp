#include "cli/debug.h"

#include <unistd.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/inputs.h"
#include "engine/debug.h"
#include "frontend/dataset.h"
#include "frontend/tensor_proto.h"

namespace engine::cli {

DebugCommand::DebugCommand(CLI::App& app) {
  cmd_ = app.add_subcommand(
      "debug",
      "Layer by layer, how far INT8 is from FP32 (MSE, SQNR, cosine), whole graph quantized and "
      "one layer at a time; which layers to keep in FP32");
  model_.add(cmd_);
  pre_.add(cmd_);
  quant_.add(cmd_);
  cmd_->add_option("--data", data_,
                   "Inputs to compare on: image folder, 'path label' list, IDX (with --labels) "
                   "or .npy; labeled data adds top-1 per mode. Also the calibration data when "
                   "no --calib / --calib-noise / --stats-in is given (first 256 items)")
      ->required();
  cmd_->add_option("--labels", labels_, "IDX or .npy label file (with IDX / .npy --data)");
  cmd_->add_option("--samples", samples_, "Items of --data compared per layer")
      ->check(CLI::PositiveNumber);
  cmd_->add_option("--batch", batch_, "Batch size")->check(CLI::PositiveNumber);
  cmd_->add_flag("--json", json_, "Print one JSON object on stdout");
  cmd_->add_flag("--no-isolated", no_isolated_,
                 "Skip the one-layer-at-a-time mode (it builds one model per layer)");
  cmd_->add_option("--dump", dump_dir_,
                   "Write FP32 and INT8 tensors of the first batch as DIR/<value>.fp32.npy, "
                   ".int8.npy (dequantized) and .q.npy (integers)");
  cmd_->add_option("--layers", dump_layers_, "With --dump: only these layers (node or value names)")
      ->delimiter(',');
  cmd_->add_option("--max-drop", max_drop_,
                   "Keep the most sensitive layers in FP32, one by one, until top-1 is within "
                   "this many points of FP32 (on --eval-limit items of --data); writes the "
                   "per-layer config to --config-out")
      ->check(CLI::NonNegativeNumber);
  cmd_->add_option("--eval-limit", eval_limit_,
                   "Items of --data used for the --max-drop accuracy (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd_->add_option("--config-out", config_out_,
                   "Where --max-drop writes the per-layer config for `engine quantize --config`");
  cmd_->add_option("--report", report_,
                   "Write a self-contained HTML report (inline SVG charts, no network)");
  cmd_->add_option("--top", top_, "Rows per table in the text output (0: all)")
      ->check(CLI::NonNegativeNumber);
}

namespace {

// Batches of the first `n` items of a data set, kept in memory after the first pass (they are
// read once per layer in the isolated mode).
DebugSource cached_source(std::shared_ptr<Dataset> ds, int64_t n, int64_t batch,
                          int64_t fixed_batch) {
  auto cache = std::make_shared<std::vector<DebugBatch>>();
  const int64_t nb = (n + batch - 1) / batch;
  return [=](int64_t i, DebugBatch& b) {
    if (i >= nb) return false;
    if (size_t(i) < cache->size()) {
      b = (*cache)[size_t(i)];
      return true;
    }
    const int64_t start = i * batch, count = std::min(batch, n - start);
    Batch raw = make_batch(*ds, start, count);
    if (fixed_batch > 0) raw = pad_batch(std::move(raw), fixed_batch);
    b.inputs = {raw.images};
    b.labels = raw.labels;
    if (size_t(i) == cache->size()) cache->push_back(b);
    return true;
  };
}

}  // namespace

int DebugCommand::run() {
  ENGINE_CHECK(!(max_drop_ >= 0 && no_isolated_),
               "--max-drop ranks layers by the isolated mode; do not give --no-isolated");
  for (const std::string& out : {report_, max_drop_ >= 0 ? config_out_ : std::string()}) {
    if (out.empty()) continue;
    const auto abs_out = std::filesystem::absolute(out).lexically_normal();
    for (const std::string& in : {model_.model, quant_.config, quant_.stats_in, data_})
      ENGINE_CHECK(in.empty() || abs_out != std::filesystem::absolute(in).lexically_normal(), out,
                   " would overwrite an input; choose another file");
  }
  Model fp32 = Model::load(model_.model, model_options(model_));
  ENGINE_CHECK(!fp32.is_quantized(), model_.model,
               ": already quantized; engine debug compares an FP32 model with its quantization");
  ENGINE_CHECK(fp32.inputs().size() == 1, model_.model,
               ": engine debug needs a single-input model, it has ", fp32.inputs().size());
  QuantFlags q = quant_;
  nlohmann::json equalized;
  if (q.equalize) {  // the FP32 reference is the equalized model (same function, other scales)
    quant::EqualizeReport er;
    fp32 = fp32.equalize(&er);
    q.equalize = false;
    equalized = {{"pairs", er.pairs}, {"relu6_replaced", er.relu6_replaced}, {"rounds", er.rounds}};
    if (!json_)
      std::cerr << "equalized " << er.pairs << " conv pairs in " << er.rounds << " rounds ("
                << er.relu6_replaced << " ReLU6 between them became ReLU)\n";
  }
  if (q.calib.empty() && q.calib_noise == 0 && q.stats_in.empty()) {
    q.calib = data_;
    if (q.calib_size == 0 && q.calib_fraction == 0) q.calib_size = 256;
    if (!json_)
      std::cerr << "note: calibrating on the first " << q.calib_size << " items of --data\n";
  }
  QuantizeReport rep;
  quantize_with_flags(fp32, q, pre_, json_, &rep);
  const quant::QuantConfig cfg = q.config_from_flags();

  auto ds = std::make_shared<Dataset>(Dataset::open(data_, labels_, make_preprocess(pre_, fp32)));
  ENGINE_CHECK(ds->size() > 0, data_, ": no items");
  const Dims in_shape = fp32.inputs()[0].shape;
  const int64_t fixed = !in_shape.empty() && in_shape[0] > 0 ? in_shape[0] : 0;
  const int64_t batch = fixed > 0 ? fixed : batch_;
  const DebugSource data = cached_source(ds, std::min(samples_, ds->size()), batch, fixed);

  DebugOptions opt;
  opt.isolated = !no_isolated_;
  opt.dump_dir = dump_dir_;
  opt.dump_layers = dump_layers_;
  const bool progress = !json_ && isatty(STDERR_FILENO);
  if (progress)
    opt.progress = [](const std::string& s) { std::cerr << "\r\33[K" << s << std::flush; };
  const DebugReport r = debug_quantization(fp32, cfg, rep.stats, data, opt);
  if (progress) std::cerr << "\r\33[K";

  nlohmann::json j = r.to_json();
  j["model"] = model_.model;
  if (!equalized.is_null()) j["equalized"] = equalized;
  std::string mixed;
  if (max_drop_ >= 0) {
    const int64_t n = eval_limit_ > 0 ? std::min(eval_limit_, ds->size()) : ds->size();
    const DebugSource eval =
        n == std::min(samples_, ds->size()) ? data : cached_source(ds, n, batch, fixed);
    const MixedPrecisionResult m =
        keep_sensitive_layers_fp32(fp32, cfg, rep.stats, r, eval, max_drop_, opt);
    if (progress) std::cerr << "\r\33[K";
    write_file_atomic(config_out_, fp32_layers_config(m.fp32_layers));
    j["max_drop"] = {{"max_drop", max_drop_}, {"items", n},   {"fp32_top1", m.fp32_top1},
                     {"top1", m.top1},        {"met", m.met}, {"fp32_layers", m.fp32_layers},
                     {"config", config_out_}};
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << "\n--max-drop " << max_drop_ << " on " << n
      << " items: FP32 top-1 " << m.fp32_top1 << " %, all INT8 " << m.int8_top1 << " %, " << m.top1
      << " % with " << m.fp32_layers.size() << " layer(s) kept in FP32"
      << (m.met ? "" : " -- the drop is NOT met even with every ranked layer in FP32") << "\n";
    for (const auto& [layer, top1] : m.steps)
      o << "  FP32: " << layer << "  -> top-1 " << top1 << " %\n";
    o << "wrote " << config_out_ << " (use: engine quantize ... --config " << config_out_ << ")\n";
    mixed = o.str();
  }
  if (!report_.empty()) {
    write_file_atomic(report_, r.to_html(std::filesystem::path(model_.model).filename().string()));
    if (!json_) mixed += "wrote " + report_ + "\n";
  }
  if (json_)
    std::cout << j.dump() << "\n";
  else
    std::cout << r.to_text(top_) << mixed;
  return 0;
}

}  // namespace engine::cli
