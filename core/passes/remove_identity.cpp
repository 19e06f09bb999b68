// Removes Identity, inference-mode Dropout and pools that copy their input (AveragePool /
// MaxPool with 1x1 kernels, unit strides and dilations, no padding: e.g. torchvision's
// AdaptiveAvgPool2d(7) on vgg's 7x7 maps) by reading their input directly.
#include "core/pass.h"

namespace engine {
namespace {

// A pool whose every output is its input element. Anything unusual (bad attribute types
// included) keeps the node, so that the op itself reports it.
bool copying_pool(const Node& n) {
  if (n.op_type != "AveragePool" && n.op_type != "MaxPool") return false;
  try {
    const auto all = [](const std::vector<int64_t>& v, int64_t x) {
      for (int64_t e : v)
        if (e != x) return false;
      return true;
    };
    const std::vector<int64_t> k = n.attrs.get_ints("kernel_shape", {});
    if (k.empty() || !all(k, 1)) return false;
    if (!all(n.attrs.get_ints("strides", {}), 1) || !all(n.attrs.get_ints("pads", {}), 0) ||
        !all(n.attrs.get_ints("dilations", {}), 1))
      return false;
    const std::string ap = n.attrs.get_string("auto_pad", "NOTSET");
    return ap == "NOTSET" || ap == "VALID" || ap == "SAME_UPPER" || ap == "SAME_LOWER";
  } catch (...) {
    return false;
  }
}

class RemoveIdentityPass : public Pass {
 public:
  std::string name() const override { return "remove-identity"; }
  std::string description() const override {
    return "drop Identity and Dropout nodes (inference mode) and pools with 1x1 windows";
  }
  bool run(Graph& g, const PassContext&) const override {
    std::vector<bool> is_output(g.values.size(), false);
    for (int v : g.outputs) is_output[size_t(v)] = true;
    const std::vector<int> uses = g.use_counts();
    std::vector<bool> remove(g.nodes.size(), false);
    bool changed = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      Node& n = g.nodes[i];
      if (n.op_type != "Identity" && n.op_type != "Dropout" && !copying_pool(n)) continue;
      if (!n.domain.empty() || n.inputs.empty() || n.inputs[0] < 0 || n.outputs.empty()) continue;
      // Dropout's mask / MaxPool's indices output must be unused; graph outputs keep their names,
      // so keep the node.
      bool removable = !is_output[size_t(n.outputs[0])];
      for (size_t o = 1; o < n.outputs.size(); ++o)
        if (uses[size_t(n.outputs[o])] > 0) removable = false;
      // Dropout with a training_mode input is only an identity when that input is a false constant.
      if (n.op_type == "Dropout" && n.inputs.size() >= 3 && n.inputs[2] >= 0) {
        const int t = n.inputs[2];
        removable = removable && g.is_constant(t) && g.value(t).constant->numel() == 1 &&
                    g.value(t).constant->get_as_int(0) == 0;
      }
      if (!removable) continue;
      g.replace_uses(n.outputs[0], n.inputs[0]);
      remove[i] = true;
      changed = true;
    }
    remove_nodes(g, remove);
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_remove_identity_pass() {
  return std::make_unique<RemoveIdentityPass>();
}

}  // namespace engine
