// Conv / FusedConv (without an activation) followed by an activation -> FusedConv with that
// activation: Relu, Clip (constant bounds), LeakyRelu, Sigmoid, HardSigmoid, HardSwish, and SiLU
// written as Mul(y, Sigmoid(y)). Only when the activation is the conv output's sole reader (for
// SiLU: exactly the Sigmoid and the Mul) and the conv output is not a graph output.
#include "core/pass.h"
#include "core/passes/fusion_util.h"

namespace engine {
namespace {

using namespace fusion;

class FuseConvActivationPass : public Pass {
 public:
  std::string name() const override { return "fuse-conv-activation"; }
  std::string description() const override {
    return "Conv + Relu/Clip/LeakyRelu/Sigmoid/HardSigmoid/HardSwish/SiLU -> FusedConv";
  }
  int fuse_level() const override { return 1; }
  bool run(Graph& g, const PassContext&) const override {
    return rewrite_nodes(g, [&](GraphIndex& idx, int i) {
      const Node& conv = g.nodes[size_t(i)];
      if (!is_conv_like(conv) || has_activation(conv) || conv.outputs.size() != 1) return false;
      const std::optional<ActivationMatch> act = match_activation(g, idx, conv.outputs[0]);
      if (!act) return false;
      Node fused = to_fused(conv, 2);
      set_activation(fused, *act);
      fused.outputs = {act->output};
      std::vector<int> pattern = act->nodes;
      pattern.push_back(i);
      place_fused(g, idx, pattern, std::move(fused));
      return true;
    });
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_conv_activation_pass() {
  return std::make_unique<FuseConvActivationPass>();
}

}  // namespace engine
