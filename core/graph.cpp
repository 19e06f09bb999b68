#include "core/graph.h"

namespace engine {

int Graph::add_value(const std::string& name) {
  auto it = index_.find(name);
  if (it != index_.end()) return it->second;
  int id = int(values.size());
  values.push_back(Value{});
  values.back().name = name;
  index_[name] = id;
  return id;
}

int Graph::find_value(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

void Graph::replace_uses(int from, int to) {
  for (Node& n : nodes)
    for (int& v : n.inputs)
      if (v == from) v = to;
  for (int& v : outputs)
    if (v == from) v = to;
}

std::vector<int> Graph::producers() const {
  std::vector<int> p(values.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].outputs) p[size_t(v)] = int(i);
  return p;
}

std::vector<int> Graph::use_counts() const {
  std::vector<int> c(values.size(), 0);
  for (const Node& n : nodes)
    for (int v : n.inputs)
      if (v >= 0) ++c[size_t(v)];
  for (int v : outputs) ++c[size_t(v)];
  return c;
}

void Graph::reindex() {
  index_.clear();
  for (size_t i = 0; i < values.size(); ++i) index_[values[i].name] = int(i);
}

}  // namespace engine
