// The one list of graph passes, in the order they run.
#include "core/pass.h"

namespace engine {

std::unique_ptr<Pass> make_topo_sort_pass();
std::unique_ptr<Pass> make_remove_identity_pass();
std::unique_ptr<Pass> make_fold_constants_pass();
std::unique_ptr<Pass> make_remove_dead_pass();

const std::vector<std::unique_ptr<Pass>>& all_passes() {
  static const std::vector<std::unique_ptr<Pass>> passes = [] {
    std::vector<std::unique_ptr<Pass>> v;
    v.push_back(make_topo_sort_pass());
    v.push_back(make_remove_identity_pass());
    v.push_back(make_fold_constants_pass());
    v.push_back(make_remove_dead_pass());
    return v;
  }();
  return passes;
}

void run_passes(Graph& g, const PassContext& ctx, const PassOptions& opt) {
  std::set<std::string> known;
  for (const auto& p : all_passes()) known.insert(p->name());
  auto list = [&] {
    std::string s;
    for (const auto& p : all_passes()) s += (s.empty() ? "" : ", ") + p->name();
    return s;
  };
  for (const std::string& d : opt.disabled)
    ENGINE_CHECK(known.count(d), "unknown pass '", d, "' (passes: ", list(), ")");
  ENGINE_CHECK(opt.stop_after.empty() || known.count(opt.stop_after), "unknown pass '",
               opt.stop_after, "' (passes: ", list(), ")");
  for (const auto& p : all_passes()) {
    if (p->required() || !opt.disabled.count(p->name())) p->run(g, ctx);
    if (p->name() == opt.stop_after) break;
  }
}

}  // namespace engine
