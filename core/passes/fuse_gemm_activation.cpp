// Gemm (float32) followed by an activation -> FusedGemm with that activation (the activations of
// fuse-conv-activation). First, MatMul(A 2-D, constant 2-D B) + Add(constant bias [N] or [1, N])
// becomes Gemm(A, B, bias), so exporters' MatMul + Add classifiers fuse too.
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

class FuseGemmActivationPass : public Pass {
 public:
  std::string name() const override { return "fuse-gemm-activation"; }
  std::string description() const override {
    return "MatMul + Add(bias) -> Gemm; Gemm + activation -> FusedGemm";
  }
  int fuse_level() const override { return 1; }
  bool run(Graph& g, const PassContext& ctx) const override {
    // Shapes are only needed to see that a MatMul's A is 2-D or a Gemm is float32; inferred once,
    // on first need (rewrites keep every existing value's shape).
    std::optional<std::optional<ShapeInfo>> shapes;
    auto shape_info = [&]() -> const ShapeInfo* {
      if (!shapes) shapes = ShapeInfo::infer(g, ctx.registry);
      return *shapes ? &**shapes : nullptr;
    };
    auto is_f32 = [&](int v) {
      if (v < 0) return false;
      if (g.is_constant(v)) return g.value(v).constant->dtype() == DType::F32;
      if (g.value(v).dtype != DType::Undefined) return g.value(v).dtype == DType::F32;
      const ShapeInfo* s = shape_info();
      return s && s->dtype(v) == DType::F32;
    };
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const Node& n = g.nodes[size_t(i)];
      if (is_op(n, "MatMul")) return matmul_add_to_gemm(g, idx, i, shape_info);
      if (!is_gemm_like(n) || has_activation(n) || n.outputs.size() != 1 || n.inputs.size() < 2)
        return false;
      if (!is_f32(n.inputs[0]) && !is_f32(n.inputs[1])) return false;
      const std::optional<ActivationMatch> act = match_activation(g, idx, n.outputs[0]);
      if (!act) return false;
      Node fused = to_fused(n, 2);
      set_activation(fused, *act);
      fused.outputs = {act->output};
      std::vector<int> pattern = act->nodes;
      pattern.push_back(i);
      place_fused(g, idx, pattern, std::move(fused));
      return true;
    });
  }

 private:
  template <class ShapeFn>
  static bool matmul_add_to_gemm(Graph& g, GraphIndex& idx, int i, ShapeFn& shape_info) {
    const Node& mm = g.nodes[size_t(i)];
    if (mm.inputs.size() != 2 || mm.outputs.size() != 1 || mm.opset < 7) return false;
    const Tensor* B = f32_constant(g, mm.inputs[1]);
    if (!B || B->rank() != 2) return false;
    const int y = mm.outputs[0];
    const std::vector<int>& readers = idx.consumers(y);
    if (readers.size() != 1 || idx.is_graph_output(y)) return false;
    const int ai = readers[0];
    const Node& add = g.nodes[size_t(ai)];
    if (!is_op(add, "Add") || add.inputs.size() != 2 || add.outputs.size() != 1) return false;
    const int bias = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
    const Tensor* c = f32_constant(g, bias);
    if (!c || c->rank() < 1 || c->rank() > 2 || c->dim(-1) != B->dim(1) || c->numel() != B->dim(1))
      return false;  // [N] or [1, N]
    const ShapeInfo* s = shape_info();
    if (!s || s->rank(mm.inputs[0]) != 2 || s->dtype(mm.inputs[0]) != DType::F32) return false;
    Node gemm;
    gemm.name = mm.name;
    gemm.op_type = "Gemm";
    gemm.opset = mm.opset;
    gemm.inputs = {mm.inputs[0], mm.inputs[1], bias};
    gemm.outputs = {add.outputs[0]};
    place_fused(g, idx, {i, ai}, std::move(gemm));
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_gemm_activation_pass() {
  return std::make_unique<FuseGemmActivationPass>();
}

}  // namespace engine
