#include "quant/calibrate.h"

#include <cmath>
#include <fstream>

namespace engine::quant {

Calibrator::Calibrator(std::shared_ptr<const Graph> float_graph, const OpRegistry& registry,
                       StatsOptions options)
    : graph_(std::move(float_graph)), exec_(graph_, registry), options_(options) {
  for (const Node& n : graph_->nodes) {
    const bool compute = n.op_type == "Conv" || n.op_type == "FusedConv" || n.op_type == "Gemm" ||
                         n.op_type == "FusedGemm";
    if (compute && !n.inputs.empty() && n.inputs[0] >= 0)
      channel_stats_.insert(graph_->value(n.inputs[0]).name);
  }
}

void Calibrator::observe(const std::string& name, const Tensor& t) {
  if (t.dtype() != DType::F32 || t.numel() == 0) return;
  auto it = stats_.find(name);
  if (it == stats_.end()) it = stats_.emplace(name, TensorStats(options_)).first;
  const int64_t samples = t.rank() > 0 && t.dim(0) > 0 ? t.dim(0) : 1;
  it->second.observe(t.data<float>(), t.numel(), samples);
  if (t.rank() >= 2 && t.dim(1) > 0 && channel_stats_.count(name)) {
    int64_t inner = 1;
    for (int k = 2; k < t.rank(); ++k) inner *= t.dim(k);
    it->second.observe_channels(t.data<float>(), t.dim(0), t.dim(1), inner);
  }
}

void Calibrator::add_batch(const std::vector<Tensor>& inputs, int threads) {
  const Graph& g = *graph_;
  ENGINE_CHECK(inputs.size() == g.inputs.size(), "calibration batch has ", inputs.size(),
               " inputs, the model has ", g.inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) observe(g.value(g.inputs[i]).name, inputs[i]);
  RunOptions ro;
  ro.threads = threads;
  ro.after_node = [&](const Node& n, const std::vector<Tensor*>& outs) {
    for (size_t k = 0; k < outs.size() && k < n.outputs.size(); ++k)
      if (outs[k] && n.outputs[k] >= 0) observe(g.value(n.outputs[k]).name, *outs[k]);
  };
  exec_.run(inputs, ro);
  ++batches_;
  samples_ += inputs.empty() || inputs[0].rank() == 0 ? 1 : inputs[0].dim(0);
}

nlohmann::json stats_to_json(const StatsMap& stats, int64_t samples, const nlohmann::json& chosen) {
  nlohmann::json j;
  j["format"] = "engine-calibration-stats";
  j["version"] = 1;
  j["samples"] = samples;
  nlohmann::json& t = j["tensors"] = nlohmann::json::object();
  for (const auto& [name, s] : stats) {
    nlohmann::json e = s.to_json();
    if (chosen.contains(name)) e["chosen"] = chosen[name];
    t[name] = std::move(e);
  }
  return j;
}

StatsMap stats_from_json(const nlohmann::json& j, const std::string& what,
                         std::map<std::string, Range>* overrides) {
  ENGINE_CHECK(j.is_object() && j.value("format", "") == "engine-calibration-stats", what,
               ": not an engine calibration stats file (missing \"format\": "
               "\"engine-calibration-stats\")");
  ENGINE_CHECK(j.value("version", 0) == 1, what, ": unsupported stats version ",
               j.value("version", 0));
  ENGINE_CHECK(j.contains("tensors") && j["tensors"].is_object(), what,
               ": missing the \"tensors\" object");
  StatsMap m;
  for (auto it = j["tensors"].begin(); it != j["tensors"].end(); ++it) {
    try {
      m.emplace(it.key(), TensorStats::from_json(it.value()));
    } catch (const Error& e) {
      fail(what, ": tensor '", it.key(), "': ", e.what());
    }
    if (overrides && it.value().contains("override_range")) {
      const nlohmann::json& r = it.value()["override_range"];
      ENGINE_CHECK(r.is_array() && r.size() == 2 && r[0].is_number() && r[1].is_number(), what,
                   ": tensor '", it.key(), "': override_range must be [lo, hi]");
      const double lo = r[0].get<double>(), hi = r[1].get<double>();
      ENGINE_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, what, ": tensor '", it.key(),
                   "': override_range [", lo, ", ", hi, "] must be finite with lo <= hi");
      (*overrides)[it.key()] = Range{lo, hi};
    }
  }
  return m;
}

StatsMap read_stats_file(const std::string& path, std::map<std::string, Range>* overrides,
                         int64_t* samples) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  ENGINE_CHECK(f, path, ": cannot open the stats file");
  const std::streamoff size = f.tellg();
  ENGINE_CHECK(size >= 0 && size <= (std::streamoff(1) << 30), path,
               ": the stats file is larger than 1 GiB");
  std::string text(static_cast<size_t>(size), '\0');
  f.seekg(0);
  f.read(text.data(), size);
  ENGINE_CHECK(f, path, ": cannot read the stats file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  StatsMap m = stats_from_json(j, path, overrides);
  if (samples) *samples = j.value("samples", int64_t(0));
  return m;
}

}  // namespace engine::quant
