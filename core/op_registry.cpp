#include "core/op_registry.h"

namespace engine {

const InferContext::Input& InferContext::input(int i) const {
  ENGINE_CHECK(has_input(i), "input ", i, " is missing");
  return inputs_[size_t(i)];
}

const Tensor& InferContext::value(int i) const {
  const Tensor* t = value_or_null(i);
  ENGINE_CHECK(t, "input ", i,
               " must be a constant (or computable from shapes); it depends on "
               "run-time data, which this engine does not support for this input");
  return *t;
}

void InferContext::set_output(int i, DType dtype, Dims shape) {
  ENGINE_CHECK(i >= 0 && i < num_outputs(), "output ", i, " does not exist");
  checked_numel(shape);
  outputs_[size_t(i)] = Output{dtype, std::move(shape), true};
}

void InferContext::set_output_value(int i, Tensor value) {
  set_output(i, value.dtype(), value.shape());
  known_outputs_.resize(outputs_.size());
  known_outputs_[size_t(i)] = std::move(value);
}

void OpRegistry::add(OpSchema schema) {
  auto key = std::make_pair(schema.domain, schema.op_type);
  schemas_[key] = std::move(schema);
}

const OpSchema* OpRegistry::find(const std::string& domain, const std::string& op_type) const {
  std::string d = domain == "ai.onnx" ? "" : domain;
  auto it = schemas_.find({d, op_type});
  return it == schemas_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::op_types() const {
  std::vector<std::string> v;
  for (auto& [k, s] : schemas_) v.push_back(k.first.empty() ? k.second : k.first + "." + k.second);
  return v;
}

}  // namespace engine
