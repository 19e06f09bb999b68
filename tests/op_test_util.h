// Runs one node through its schema (validate, infer, kernel) for op unit tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "core/op_registry.h"
#include "engine/engine.h"
#include "model_builder.h"

namespace engine::test {

struct NodeSpec {
  std::string op_type;
  Attributes attrs;
  int opset = 17;
  int num_outputs = 1;
  std::string domain;
};

// inputs: an undefined Tensor() stands for an omitted optional input. Values of all inputs are
// visible to inference (as if constant), which is what ops like Reshape need.
inline std::vector<Tensor> run_node(const OpRegistry& reg, const NodeSpec& spec,
                                    const std::vector<Tensor>& inputs) {
  const OpSchema* s = reg.find(spec.domain, spec.op_type);
  ENGINE_CHECK(s, "op ", spec.op_type, " is not registered");
  Node node;
  node.name = "test";
  node.op_type = spec.op_type;
  node.domain = spec.domain;
  node.opset = spec.opset;
  node.attrs = spec.attrs;
  for (size_t i = 0; i < inputs.size(); ++i)
    node.inputs.push_back(inputs[i].defined() ? int(i) : kNoValue);
  for (int i = 0; i < spec.num_outputs; ++i) node.outputs.push_back(int(inputs.size()) + i);
  if (s->validate) s->validate(node);
  std::vector<InferContext::Input> in;
  for (const Tensor& t : inputs) {
    InferContext::Input x;
    if (t.defined()) {
      x.dtype = t.dtype();
      x.shape = t.shape();
      x.value = &t;
    }
    in.push_back(x);
  }
  InferContext ic(node, in);
  s->infer(ic);
  std::vector<Tensor> outs;
  for (auto& o : ic.outputs()) {
    ENGINE_CHECK(o.set, spec.op_type, ": inference did not set every output");
    outs.emplace_back(o.dtype, o.shape);
  }
  if (ic.known_outputs().size()) {
    for (size_t i = 0; i < outs.size(); ++i)
      if (ic.known_outputs()[i].defined()) outs[i] = ic.known_outputs()[i];
  }
  std::shared_ptr<const void> state;  // what the op's prepare builds once per plan
  if (s->prepare) state = s->prepare(ic);
  KernelContext kc{node, {}, {}, 2, state.get()};
  for (const Tensor& t : inputs) kc.inputs.push_back(t.defined() ? &t : nullptr);
  for (Tensor& t : outs) kc.outputs.push_back(&t);
  if (s->kernel) s->kernel(kc);
  return outs;
}

inline void check_close(const Tensor& got, const std::vector<float>& want, const Dims& shape,
                        float atol = 1e-5f, float rtol = 1e-5f) {
  REQUIRE(got.shape() == shape);
  REQUIRE(size_t(got.numel()) == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got.get_as_double(int64_t(i));
    INFO("element ", i, ": got ", g, " want ", want[i]);
    if (std::isnan(want[i])) {
      CHECK(std::isnan(g));
    } else if (std::isinf(want[i])) {
      CHECK(g == double(want[i]));
    } else {
      CHECK(std::abs(g - want[i]) <= atol + rtol * std::abs(want[i]));
    }
  }
}

// A float32 tensor of uniform values in [lo, hi).
inline Tensor rand_tensor(const Dims& shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// How many nodes of each op type the graph has.
inline std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const Node& n : g.nodes) ++c[n.op_type];
  return c;
}

// The model on `backend` at fusion level `fuse`, with the passes `disabled` switched off.
inline Model load_model(const ModelBuilder& mb, const std::string& backend,
                        const std::string& fuse = "all", std::set<std::string> disabled = {}) {
  ModelOptions o;
  o.backend = backend;
  o.passes.fuse = fuse;
  o.passes.disabled = std::move(disabled);
  return Model::load_from_memory(mb.bytes(), o);
}

// Max |got - want| / (1 + |want|) over float32 tensors of the same shape.
inline double max_rel_diff(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.data<float>()[i], b = want.data<float>()[i];
    worst = std::max(worst, std::abs(a - b) / (1.0 + std::abs(b)));
  }
  return worst;
}

// The same over all outputs.
inline double max_rel_diff(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t k = 0; k < got.size(); ++k) worst = std::max(worst, max_rel_diff(got[k], want[k]));
  return worst;
}

}  // namespace engine::test
