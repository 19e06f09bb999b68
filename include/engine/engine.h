// Public C++ API: load an ONNX model, prepare it once, run it many times.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/executor.h"
#include "core/pass.h"
#include "core/tensor.h"
#include "frontend/onnx_loader.h"

namespace engine {

constexpr int kApiVersionMajor = 0;
constexpr int kApiVersionMinor = 1;

struct ModelOptions {
  int threads = 0;  // 0: all cores (OpenMP default)
  PassOptions passes;
  LoadOptions load;
};

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
  // Inputs by name (all required); outputs by name.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const RunOptions& opt = {}) const;

  const Graph& graph() const { return exec_->graph(); }
  const ModelInfo& info() const { return info_; }
  const ModelOptions& options() const { return opt_; }
  // Plan for concrete input shapes (shapes, folded values, memory plan), for inspection.
  std::shared_ptr<const Plan> plan(const std::vector<Dims>& input_shapes) const;
  // Input shapes with dynamic dims replaced by `batch` (dim 0) or 1 (others).
  std::vector<Dims> concrete_input_shapes(int64_t batch) const;

 private:
  Model() = default;
  static Model from_graph(Graph g, ModelInfo info, const ModelOptions& opt);
  std::shared_ptr<Executor> exec_;
  ModelInfo info_;
  ModelOptions opt_;
  std::vector<IoInfo> inputs_, outputs_;
};

}  // namespace engine
