// Reshape / Flatten clean-up (conservative; needs the graph's shapes, see fusion_util ShapeInfo):
//   - a Reshape/Flatten whose output has its input's shape is dropped (unless it names a graph
//     output);
//   - Reshape/Flatten -> Reshape/Flatten, the intermediate read only by the second, becomes one
//     Reshape with a constant shape, when the final shape is static (or has a single dim that
//     follows the graph's single dynamic input dim, written as -1).
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

bool is_reshape_like(const Node& n) {
  return (is_op(n, "Reshape") || is_op(n, "Flatten")) && !n.inputs.empty() && n.inputs[0] >= 0 &&
         n.outputs.size() == 1;
}

class MergeReshapesPass : public Pass {
 public:
  std::string name() const override { return "merge-reshapes"; }
  std::string description() const override {
    return "drop no-op Reshapes; merge Reshape/Flatten chains into one Reshape";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext& ctx) const override {
    bool any = false;
    for (const Node& n : g.nodes) any = any || is_reshape_like(n);
    if (!any || g.opset < 5) return false;  // Reshape takes its shape as an input from opset 5
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    if (!shapes) return false;
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      Node& n = g.nodes[size_t(i)];
      if (!is_reshape_like(n)) return false;
      const int x = n.inputs[0], y = n.outputs[0];
      if (shapes->same_shape(x, y)) {
        if (idx.is_graph_output(y)) return false;
        g.replace_uses(y, x);
        idx.kill(i);
        return true;
      }
      const int p = idx.producer(x);
      if (p < 0 || !is_reshape_like(g.nodes[size_t(p)]) || !idx.only_read_by(x, i)) return false;
      std::optional<Dims> shape = shapes->static_shape(y);
      if (!shape) shape = shapes->shape_with_one_dynamic_dim(y);
      if (!shape) return false;
      for (int64_t d : *shape)
        if (d == 0) return false;  // 0 would mean "copy the input dim" (allowzero = 0)
      const int shape_id = add_constant(
          g, n.name + "_shape", Tensor::from_vector<int64_t>({int64_t(shape->size())}, *shape));
      Node r;
      r.name = n.name;
      r.op_type = "Reshape";
      r.opset = g.opset;
      r.inputs = {g.nodes[size_t(p)].inputs[0], shape_id};
      r.outputs = {y};
      place_fused(g, idx, {p, i}, std::move(r));
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_merge_reshapes_pass() {
  return std::make_unique<MergeReshapesPass>();
}

}  // namespace engine
