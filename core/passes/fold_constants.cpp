// Evaluates nodes whose inputs are all constants (e.g. Cast of float16 weights, ConstantOfShape
// weights, Reshape of initializers) once at load time.
#include "core/executor.h"
#include "core/pass.h"

namespace engine {
namespace {

class FoldConstantsPass : public Pass {
 public:
  std::string name() const override { return "fold-constants"; }
  std::string description() const override {
    return "evaluate nodes whose inputs are all constants";
  }
  bool run(Graph& g, const PassContext& ctx) const override {
    std::vector<bool> remove(g.nodes.size(), false);
    bool changed = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      bool all_const = true;
      for (int v : n.inputs)
        if (v >= 0 && !g.is_constant(v)) all_const = false;
      if (!all_const) continue;
      std::vector<const Tensor*> in;
      for (int v : n.inputs) in.push_back(v >= 0 ? &*g.value(v).constant : nullptr);
      std::vector<Tensor> outs = eval_node(ctx.registry, n, in);
      for (size_t o = 0; o < outs.size(); ++o) {
        Value& out = g.value(n.outputs[o]);
        out.dtype = outs[o].dtype();
        out.shape = outs[o].shape();
        out.has_shape = true;
        out.constant = std::move(outs[o]);
      }
      remove[i] = true;
      changed = true;
    }
    remove_nodes(g, remove);
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_constants_pass() {
  return std::make_unique<FoldConstantsPass>();
}

}  // namespace engine
