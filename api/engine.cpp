#include "engine/engine.h"

#include "ops/ops.h"

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
  run_passes(g, PassContext{reference_registry()}, opt.passes);
  Model m;
  m.exec_ =
      std::make_shared<Executor>(std::make_shared<const Graph>(std::move(g)), reference_registry());
  m.info_ = std::move(info);
  m.opt_ = opt;
  m.inputs_ = io_infos(m.graph(), m.graph().inputs);
  m.outputs_ = io_infos(m.graph(), m.graph().outputs);
  return m;
}

Model Model::load(const std::string& path, const ModelOptions& opt) {
  ModelInfo info;
  Graph g = load_onnx(path, reference_registry(), opt.load, &info);
  return from_graph(std::move(g), std::move(info), opt);
}

Model Model::load_from_memory(const std::string& bytes, const ModelOptions& opt) {
  ModelInfo info;
  Graph g = load_onnx_bytes(bytes, reference_registry(), opt.load, &info);
  return from_graph(std::move(g), std::move(info), opt);
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs, const RunOptions& opt) const {
  RunOptions o = opt;
  if (o.threads <= 0) o.threads = opt_.threads;
  return exec_->run(inputs, o);
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
