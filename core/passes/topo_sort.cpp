// Orders nodes so every input is produced before it is read; reports cycles and dangling inputs.
#include <queue>

#include "core/pass.h"

namespace engine {

void topological_sort(Graph& g) {
  const size_t n = g.nodes.size();
  std::vector<int> producer(g.values.size(), -1);
  for (size_t i = 0; i < n; ++i)
    for (int v : g.nodes[i].outputs) {
      ENGINE_CHECK(producer[size_t(v)] < 0, g.nodes[i].label(), ": output '", g.value(v).name,
                   "' is also produced by ", g.nodes[size_t(producer[size_t(v)])].label());
      ENGINE_CHECK(!g.is_constant(v), g.nodes[i].label(), ": output '", g.value(v).name,
                   "' has the same name as an initializer");
      producer[size_t(v)] = int(i);
    }
  std::vector<bool> is_input(g.values.size(), false);
  for (int v : g.inputs) is_input[size_t(v)] = true;
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> consumers(n);
  for (size_t i = 0; i < n; ++i) {
    for (int v : g.nodes[i].inputs) {
      if (v < 0) continue;
      int p = producer[size_t(v)];
      if (p < 0) {
        ENGINE_CHECK(is_input[size_t(v)] || g.is_constant(v), g.nodes[i].label(), ": input '",
                     g.value(v).name, "' is not produced by any node, initializer or graph input");
        continue;
      }
      ++pending[i];
      consumers[size_t(p)].push_back(int(i));
    }
  }
  for (int v : g.outputs)
    ENGINE_CHECK(producer[size_t(v)] >= 0 || is_input[size_t(v)] || g.is_constant(v),
                 "graph output '", g.value(v).name, "' is not produced by any node");
  // Kahn's algorithm; the min-heap keeps the original order among ready nodes.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(int(i));
  std::vector<Node> sorted;
  sorted.reserve(n);
  std::vector<bool> done(n, false);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    done[size_t(i)] = true;
    for (int c : consumers[size_t(i)])
      if (--pending[size_t(c)] == 0) ready.push(c);
    sorted.push_back(std::move(g.nodes[size_t(i)]));
  }
  if (sorted.size() != n) {
    std::string names;
    int shown = 0;
    for (size_t i = 0; i < n && shown < 5; ++i)
      if (!done[i]) {
        names += (shown++ ? ", " : "") + g.nodes[i].label();
      }
    fail("the graph has a cycle (", n - sorted.size(), " nodes never become ready, e.g. ", names,
         ")");
  }
  g.nodes = std::move(sorted);
}

void remove_nodes(Graph& g, const std::vector<bool>& remove) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!remove[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

namespace {
class TopoSortPass : public Pass {
 public:
  std::string name() const override { return "topo-sort"; }
  std::string description() const override {
    return "order nodes topologically; reject cycles and dangling inputs";
  }
  bool required() const override { return true; }
  bool run(Graph& g, const PassContext&) const override {
    topological_sort(g);
    return false;
  }
};
}  // namespace

std::unique_ptr<Pass> make_topo_sort_pass() {
  return std::make_unique<TopoSortPass>();
}

}  // namespace engine
