#include "engine/engine.h"

#include <mutex>

#include "backends/registry.h"
#include "frontend/native.h"
#include "frontend/onnx_writer.h"
#include "frontend/qdq_export.h"

namespace engine {

static std::vector<IoInfo> io_infos(const Graph& g, const std::vector<int>& ids) {
  std::vector<IoInfo> v;
  for (int id : ids) {
    const Value& val = g.value(id);
    v.push_back({val.name, val.dtype, val.has_shape ? val.shape : Dims{}});
  }
  return v;
}

Model Model::from_graph(Graph g, ModelInfo info, const ModelOptions& opt) {
  run_passes(g, PassContext{engine_registry()}, opt.passes);  // the backend passes: set_graph
  return from_ir(std::move(g), std::move(info), opt);
}

Model Model::from_ir(Graph g, ModelInfo info, const ModelOptions& opt) {
  Model m;
  m.info_ = std::move(info);
  m.opt_ = opt;
  m.set_graph(std::move(g));
  return m;
}

// The lowering run_watch falls back to (Model::watch_executor).
struct Model::WatchLowering {
  std::mutex mu;
  std::shared_ptr<Executor> exec;
};

void Model::set_graph(Graph g) {
  ENGINE_CHECK(opt_.backend == "onednn" || opt_.backend == "reference", "unknown backend '",
               opt_.backend, "' (expected onednn or reference)");
  ir_ = std::make_shared<const Graph>(g);
  if (opt_.backend == "onednn") run_passes(g, PassContext{engine_registry()}, opt_.passes, true);
  exec_ =
      std::make_shared<Executor>(std::make_shared<const Graph>(std::move(g)), engine_registry());
  watch_ = std::make_shared<WatchLowering>();
  inputs_ = io_infos(graph(), graph().inputs);
  outputs_ = io_infos(graph(), graph().outputs);
}

Model Model::load(const std::string& path, const ModelOptions& opt) {
  ModelInfo info;  // filled by the loader before it is moved below
  if (is_native_file(path)) {
    Graph g = load_native(path, engine_registry(), opt.load, &info);
    return from_ir(std::move(g), std::move(info), opt);
  }
  Graph g = load_onnx(path, engine_registry(), opt.load, &info);
  return from_graph(std::move(g), std::move(info), opt);
}

Model Model::load_from_memory(const std::string& bytes, const ModelOptions& opt) {
  ModelInfo info;
  if (is_native_bytes(bytes)) {
    Graph g = load_native_bytes(bytes, engine_registry(), opt.load, &info);
    return from_ir(std::move(g), std::move(info), opt);
  }
  Graph g = load_onnx_bytes(bytes, engine_registry(), opt.load, &info);
  return from_graph(std::move(g), std::move(info), opt);
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs, const RunOptions& opt) const {
  RunOptions o = opt;
  if (o.threads <= 0) o.threads = opt_.threads;
  return exec_->run(inputs, o);
}

// NHWC [N,H,W,C] -> NCHW [N,C,H,W], by the Transpose kernel.
static Tensor nhwc_to_nchw(const Tensor& t) {
  Node n;
  n.name = "run_watch_to_nchw";
  n.op_type = "Transpose";
  n.opset = 13;
  n.inputs = {0};
  n.outputs = {1};
  n.attrs.set("perm", std::vector<int64_t>{0, 3, 1, 2});
  return eval_node(engine_registry(), n, {&t}).at(0);
}

// Backend fusions fold IR values away (fuse-mbconv: the expanded and depthwise tensors of an
// inverted-residual block; fuse-stem: the first conv's output before its max pool;
// fuse-qconv-qadd: the conv output before the add). When a watched value
// is one of them, the watch runs the IR lowered without those fusions (same numbers up to float
// summation order), built once per model.
const Executor& Model::watch_executor(const std::set<std::string>& watch) const {
  if (opt_.backend != "onednn") return *exec_;
  std::set<std::string> produced;
  const Graph& g = graph();
  for (int id : g.inputs) produced.insert(g.value(id).name);
  for (const Node& n : g.nodes)
    for (int o : n.outputs)
      if (o >= 0) produced.insert(g.value(o).name);
  bool hidden = false;
  for (const std::string& w : watch)
    hidden =
        hidden || (ir_->find_value(w) >= 0 && !produced.count(w) && !produced.count(w + "_nhwc"));
  if (!hidden) return *exec_;
  std::lock_guard<std::mutex> lock(watch_->mu);
  if (!watch_->exec) {
    Graph lowered = *ir_;
    PassOptions po = opt_.passes;
    po.disabled.insert("fuse-mbconv");
    po.disabled.insert("fuse-stem");
    po.disabled.insert("fuse-qconv-qadd");
    run_passes(lowered, PassContext{engine_registry()}, po, true);
    watch_->exec = std::make_shared<Executor>(std::make_shared<const Graph>(std::move(lowered)),
                                              engine_registry());
  }
  return *watch_->exec;
}

std::vector<Tensor> Model::run_watch(const std::vector<Tensor>& inputs,
                                     const std::set<std::string>& watch, const WatchFn& fn,
                                     const RunOptions& opt) const {
  // Lowered value id -> (IR name, channels-last). The lowering names a value's NHWC form
  // "<name>_nhwc" (core/passes/lower_onednn.cpp).
  const Executor& ex = watch_executor(watch);
  const Graph& g = ex.graph();
  std::vector<std::pair<const std::string*, bool>> map(g.values.size(), {nullptr, false});
  static const std::string kSuffix = "_nhwc";
  for (size_t v = 0; v < g.values.size(); ++v) {
    const std::string& n = g.values[v].name;
    auto it = watch.find(n);
    if (it != watch.end()) {
      map[v] = {&*it, false};
    } else if (n.size() > kSuffix.size() && n.ends_with(kSuffix)) {
      it = watch.find(n.substr(0, n.size() - kSuffix.size()));
      if (it != watch.end()) map[v] = {&*it, true};
    }
  }
  std::set<std::string> gemm_outputs;
  for (const Node& n : ir().nodes)
    if (n.op_type.find("Gemm") != std::string::npos ||
        n.op_type.find("MatMul") != std::string::npos)
      for (int o : n.outputs)
        if (o >= 0) gemm_outputs.insert(ir().value(o).name);
  std::set<std::string> done;
  auto deliver = [&](size_t v, const Tensor& t) {
    const auto [name, nhwc] = map[v];
    if (!name || !done.insert(*name).second) return;
    if (!nhwc || t.rank() != 4) return fn(*name, t);
    Tensor o = nhwc_to_nchw(t);
    // A 2-D value the lowering ran as a 1x1 convolution over [M,1,1,K] (QGemm): back to [M,N].
    // Only a Gemm / MatMul output is 2-D in the IR; a conv's [N,C,1,1] output stays 4-D.
    if (o.dim(2) == 1 && o.dim(3) == 1 && gemm_outputs.count(*name))
      o = o.reshaped(Dims{o.dim(0), o.dim(1)});
    fn(*name, o);
  };
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    deliver(size_t(g.inputs[i]), inputs[i]);
  RunOptions o = opt;
  o.after_node = [&](const Node& n, const std::vector<Tensor*>& outs) {
    for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
      if (n.outputs[k] >= 0 && outs[k]) deliver(size_t(n.outputs[k]), *outs[k]);
  };
  if (o.threads <= 0) o.threads = opt_.threads;
  return ex.run(inputs, o);
}

std::map<std::string, Tensor> Model::run(const std::map<std::string, Tensor>& inputs,
                                         const RunOptions& opt) const {
  std::vector<Tensor> in;
  for (const IoInfo& i : this->inputs()) {
    auto it = inputs.find(i.name);
    ENGINE_CHECK(it != inputs.end(), "input '", i.name, "' is missing");
    in.push_back(it->second);
  }
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const IoInfo& i : this->inputs()) known = known || i.name == name;
    ENGINE_CHECK(known, "the model has no input named '", name, "'");
  }
  std::vector<Tensor> out = run(in, opt);
  std::map<std::string, Tensor> res;
  const auto outs = outputs();
  for (size_t i = 0; i < outs.size(); ++i) res[outs[i].name] = std::move(out[i]);
  return res;
}

std::shared_ptr<const Plan> Model::plan(const std::vector<Dims>& input_shapes) const {
  return exec_->plan_for(input_shapes);
}

std::vector<Dims> Model::concrete_input_shapes(int64_t batch) const {
  std::vector<Dims> shapes;
  for (const IoInfo& i : inputs()) {
    Dims d = i.shape;
    for (size_t k = 0; k < d.size(); ++k)
      if (d[k] < 0) d[k] = k == 0 ? batch : 1;
    shapes.push_back(d);
  }
  return shapes;
}

}  // namespace engine

namespace engine {

quant::StatsMap Model::calibrate(const BatchSource& source, const quant::StatsOptions& opt,
                                 int64_t* samples) const {
  ENGINE_CHECK(!is_quantized(), "calibration needs an FP32 model; this one is already quantized");
  quant::Calibrator cal(ir_, engine_registry(), opt);
  std::vector<Tensor> batch;
  while (source(batch)) {
    cal.add_batch(batch, opt_.threads);
    batch.clear();
  }
  ENGINE_CHECK(cal.batches() > 0, "calibration received no data");
  if (samples) *samples = cal.samples();
  return cal.stats();
}

Model Model::with_graph(Graph g) const {
  return from_ir(std::move(g), info_, opt_);
}

Model Model::equalize(quant::EqualizeReport* report) const {
  ENGINE_CHECK(!is_quantized(), "equalization needs an FP32 model; this one is already quantized");
  Graph g = ir();
  const quant::EqualizeReport r = quant::equalize_graph(g);
  if (report) *report = r;
  return with_graph(std::move(g));
}

Model Model::quantize(const quant::QuantConfig& cfg, const BatchSource& source,
                      QuantizeReport* report) const {
  if (cfg.equalize) {  // calibrate the equalized graph
    quant::QuantConfig c = cfg;
    c.equalize = false;
    return equalize().quantize(c, source, report);
  }
  int64_t samples = 0;
  quant::StatsMap stats = calibrate(source, cfg.stats_options, &samples);
  Model m = quantize(cfg, stats, {}, report);
  if (report) {
    report->stats = std::move(stats);
    report->samples = samples;
  }
  return m;
}

Model Model::quantize(const quant::QuantConfig& cfg, const quant::StatsMap& stats,
                      const std::map<std::string, quant::Range>& range_overrides,
                      QuantizeReport* report) const {
  ENGINE_CHECK(!is_quantized(), "the model is already quantized");
  if (cfg.equalize) {  // the stats must come from the equalized graph (quantize(cfg, source))
    quant::QuantConfig c = cfg;
    c.equalize = false;
    return equalize().quantize(c, stats, range_overrides, report);
  }
  quant::QuantizeResult r = quant::quantize_graph(ir(), stats, cfg, range_overrides);
  Model m = with_graph(std::move(r.graph));
  if (report) {
    report->decisions = std::move(r.decisions);
    report->chosen = std::move(r.chosen);
    report->stats = stats;
    report->quantize_nodes = r.quantize_nodes;
    report->dequantize_nodes = r.dequantize_nodes;
    report->quantized_values = std::move(r.quantized_values);
  }
  return m;
}

bool Model::is_quantized() const {
  return quant::is_quantized_graph(ir());
}

void Model::save(const std::string& path) const {
  save_onnx(ir(), path);
}

void Model::save_native(const std::string& path) const {
  engine::save_native(ir(), info_, path);
}

void Model::save_qdq(const std::string& path) const {
  ENGINE_CHECK(is_quantized(), "--format qdq: the model is not quantized");
  save_onnx(to_qdq(ir()), path);
}

}  // namespace engine
