// Residual adds: Add(a, b) (or a two-input Sum) where one side is the output of a Conv/FusedConv
// without activation (read only by this Add, not a graph output) and the other side has exactly the
// conv output's shape -> FusedConv with Sum = the other side. A Relu or Clip that is the Add
// output's only reader becomes the fused activation: y = act(conv + B + Sum). When both sides
// qualify, the conv that comes later in node order is fused (the other one's result is then ready
// as Sum). Shapes may contain dynamic dims: they are compared with the dynamic dims set to 1 and to
// 2 (fusion_util ShapeInfo); if the graph cannot be inferred, nothing is fused.
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

class FuseConvAddPass : public Pass {
 public:
  std::string name() const override { return "fuse-conv-add"; }
  std::string description() const override {
    return "Conv + Add(same-shape tensor) [+ Relu/Clip] -> FusedConv with a Sum input";
  }
  int fuse_level() const override { return 2; }
  bool run(Graph& g, const PassContext& ctx) const override {
    bool any_add = false;
    for (const Node& n : g.nodes) any_add = any_add || is_op(n, "Add") || is_op(n, "Sum");
    if (!any_add) return false;
    const std::optional<ShapeInfo> shapes = ShapeInfo::infer(g, ctx.registry);
    if (!shapes) return false;
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const Node& add = g.nodes[size_t(i)];
      const bool adds = is_op(add, "Add") || is_op(add, "Sum");  // Sum of two: older exporters
      if (!adds || add.inputs.size() != 2 || add.outputs.size() != 1) return false;
      int best = -1, side = -1;
      for (int s = 0; s < 2; ++s) {
        const int v = add.inputs[size_t(s)], other = add.inputs[size_t(1 - s)];
        const int p = idx.producer(v);
        if (p < 0 || p <= best || other < 0 || other == v || !idx.only_read_by(v, i)) continue;
        const Node& conv = g.nodes[size_t(p)];
        if (!is_conv_like(conv) || has_activation(conv) || has_sum(conv)) continue;
        if (!shapes->same_shape(v, other) || shapes->dtype(v) != DType::F32) continue;
        best = p;
        side = s;
      }
      if (best < 0) return false;
      Node fused = to_fused(g.nodes[size_t(best)], 3);
      fused.inputs.resize(3);
      fused.inputs.push_back(add.inputs[size_t(1 - side)]);
      fused.outputs = {add.outputs[0]};
      std::vector<int> pattern = {best, i};
      const std::optional<ActivationMatch> act =
          match_activation(g, idx, add.outputs[0], /*relu_clip_only=*/true);
      if (act) {
        set_activation(fused, *act);
        fused.outputs = {act->output};
        pattern.insert(pattern.end(), act->nodes.begin(), act->nodes.end());
      }
      place_fused(g, idx, pattern, std::move(fused));
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_conv_add_pass() {
  return std::make_unique<FuseConvAddPass>();
}

}  // namespace engine
