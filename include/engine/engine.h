// Public C++ API: load an ONNX model, prepare it once, run it many times.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/executor.h"
#include "core/pass.h"
#include "core/tensor.h"
#include "frontend/onnx_loader.h"
#include "quant/calibrate.h"
#include "quant/config.h"
#include "quant/equalize.h"
#include "quant/quantize.h"

namespace engine {

constexpr int kApiVersionMajor = 0;
constexpr int kApiVersionMinor = 1;

struct ModelOptions {
  int threads = 0;  // 0: all cores (OpenMP default)
  // "onednn": float 2-D convs and pools run on oneDNN in NHWC (the lower-onednn pass);
  // "reference": every node on the reference kernels (the oracle).
  std::string backend = "onednn";
  PassOptions passes;
  LoadOptions load;
};

// What quantization did: per-node decisions, chosen ranges, calibration statistics.
struct QuantizeReport {
  std::vector<quant::NodeDecision> decisions;
  nlohmann::json chosen;  // per tensor: observer, range, scale, zero point
  quant::StatsMap stats;
  int64_t samples = 0;  // calibration samples seen
  int quantize_nodes = 0, dequantize_nodes = 0;
  std::map<std::string, std::string> quantized_values;  // float value -> its integer form
};

// Produces calibration batches: fills `inputs` (model input order) and returns true, or returns
// false when there are no more batches.
using BatchSource = std::function<bool(std::vector<Tensor>& inputs)>;

struct IoInfo {
  std::string name;
  DType dtype = DType::Undefined;
  Dims shape;  // -1 = dynamic
};

class Model {
 public:
  static Model load(const std::string& path, const ModelOptions& opt = {});
  static Model load_from_memory(const std::string& bytes, const ModelOptions& opt = {});

  const std::vector<IoInfo>& inputs() const { return inputs_; }
  const std::vector<IoInfo>& outputs() const { return outputs_; }
  // Inputs in model order; outputs in model order.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const RunOptions& opt = {}) const;
  // Runs and hands each IR value named in `watch` (graph inputs included) to `fn` once, in the
  // IR's layout (values the lowered graph computes channels-last are transposed back), while
  // the run is in progress: the tensor is valid only during the call. No batch split.
  using WatchFn = std::function<void(const std::string& name, const Tensor& t)>;
  std::vector<Tensor> run_watch(const std::vector<Tensor>& inputs,
                                const std::set<std::string>& watch, const WatchFn& fn,
                                const RunOptions& opt = {}) const;
  // Inputs by name (all required); outputs by name.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const RunOptions& opt = {}) const;

  // The graph that runs (after every pass, including the backend lowering).
  const Graph& graph() const { return exec_->graph(); }
  // The graph after the passes but before the backend lowering: what quantization and
  // calibration work on, and what `save` writes.
  const Graph& ir() const { return *ir_; }
  const ModelInfo& info() const { return info_; }
  const ModelOptions& options() const { return opt_; }
  // Plan for concrete input shapes (shapes, folded values, memory plan), for inspection.
  std::shared_ptr<const Plan> plan(const std::vector<Dims>& input_shapes) const;
  // Input shapes with dynamic dims replaced by `batch` (dim 0) or 1 (others).
  std::vector<Dims> concrete_input_shapes(int64_t batch) const;

  // Post-training quantization. The model must be FP32; its (fused) graph is calibrated on the
  // batches from `source` and rewritten into integer ops. The returned model runs INT8.
  quant::StatsMap calibrate(const BatchSource& source, const quant::StatsOptions& opt,
                            int64_t* samples = nullptr) const;
  Model quantize(const quant::QuantConfig& cfg, const BatchSource& source,
                 QuantizeReport* report = nullptr) const;
  // From statistics computed earlier (e.g. read from a stats file).
  Model quantize(const quant::QuantConfig& cfg, const quant::StatsMap& stats,
                 const std::map<std::string, quant::Range>& range_overrides = {},
                 QuantizeReport* report = nullptr) const;
  // Cross-layer equalization (quant/equalize.h) of an FP32 model: the same function (ReLU6
  // between equalized convs becomes ReLU) with weights easier to quantize per tensor. quantize()
  // applies it itself when cfg.equalize is set.
  Model equalize(quant::EqualizeReport* report = nullptr) const;
  // True if the graph computes in integers (quantized here, or a QDQ / QLinear model).
  bool is_quantized() const;
  // Writes the graph (after passes and quantization) as ONNX; engine ops in domain "engine".
  void save(const std::string& path) const;
  // Writes a quantized model as standard ONNX QDQ (opset 13) that other runtimes load
  // (frontend/qdq_export.h); written atomically.
  void save_qdq(const std::string& path) const;
  // Writes the engine's native file (frontend/native.h, docs/NATIVE_FORMAT.md): the graph after
  // every pass and quantization, loaded by load() without protobuf parsing or passes, its
  // weights memory-mapped. Written atomically.
  void save_native(const std::string& path) const;

 private:
  Model() = default;
  static Model from_graph(Graph g, ModelInfo info, const ModelOptions& opt);
  // g already through the passes (a native file, a quantized or equalized graph): only the
  // backend lowering runs.
  static Model from_ir(Graph g, ModelInfo info, const ModelOptions& opt);
  // A model with this one's info and options running g (already through the passes).
  Model with_graph(Graph g) const;
  // Sets ir_ to g and exec_ to g lowered for opt_.backend.
  void set_graph(Graph g);
  // The executor run_watch uses: exec_, or (when a backend fusion hides watched values) the
  // IR lowered without the backend fusions, made on first need.
  const Executor& watch_executor(const std::set<std::string>& watch) const;
  std::shared_ptr<const Graph> ir_;
  std::shared_ptr<Executor> exec_;
  struct WatchLowering;
  std::shared_ptr<WatchLowering> watch_;
  ModelInfo info_;
  ModelOptions opt_;
  std::vector<IoInfo> inputs_, outputs_;
};

}  // namespace engine
