// Removes nodes that no graph output depends on, and constants nobody reads.
#include "core/pass.h"

namespace engine {
namespace {

class RemoveDeadPass : public Pass {
 public:
  std::string name() const override { return "remove-dead"; }
  std::string description() const override {
    return "remove nodes and constants no graph output depends on";
  }
  bool run(Graph& g, const PassContext&) const override {
    std::vector<bool> live(g.values.size(), false);
    for (int v : g.outputs) live[size_t(v)] = true;
    std::vector<bool> remove(g.nodes.size(), true);
    for (size_t k = g.nodes.size(); k-- > 0;) {  // nodes are in topological order
      const Node& n = g.nodes[k];
      bool needed = false;
      for (int v : n.outputs) needed = needed || live[size_t(v)];
      if (!needed) continue;
      remove[k] = false;
      for (int v : n.inputs)
        if (v >= 0) live[size_t(v)] = true;
    }
    bool changed = false;
    for (bool r : remove) changed = changed || r;
    remove_nodes(g, remove);
    // Drop the data of constants nothing reads any more (keeps inspect's parameter count honest).
    for (size_t v = 0; v < g.values.size(); ++v)
      if (!live[v] && g.values[v].constant) {
        g.values[v].constant.reset();
        changed = true;
      }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_remove_dead_pass() {
  return std::make_unique<RemoveDeadPass>();
}

}  // namespace engine
