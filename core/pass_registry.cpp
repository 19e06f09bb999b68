// The one list of graph passes, in the order they run.
#include "core/pass.h"

namespace engine {

std::unique_ptr<Pass> make_topo_sort_pass();
std::unique_ptr<Pass> make_remove_identity_pass();
// QDQ import (frontend/qdq_import.cpp): before constant folding, while weights are integers.
std::unique_ptr<Pass> make_import_qdq_pass();
std::unique_ptr<Pass> make_fold_constants_pass();
std::unique_ptr<Pass> make_remove_dead_pass();
// Fusions (core/passes/fuse_*.cpp, fold_*.cpp).
std::unique_ptr<Pass> make_fold_pad_into_conv_pass();
std::unique_ptr<Pass> make_fold_batchnorm_pass();
std::unique_ptr<Pass> make_fuse_conv_activation_pass();
std::unique_ptr<Pass> make_fuse_gemm_activation_pass();
std::unique_ptr<Pass> make_fuse_conv_add_pass();
std::unique_ptr<Pass> make_merge_reshapes_pass();
// Backend passes (Pass::backend): the lowering for the oneDNN backend and a fusion of lowered ops.
// Model runs them apart from the others, after quantization, so quantization always sees the
// plain-layout graph.
std::unique_ptr<Pass> make_lower_onednn_pass();
std::unique_ptr<Pass> make_fuse_qconv_qadd_pass();
std::unique_ptr<Pass> make_fuse_mbconv_pass();
std::unique_ptr<Pass> make_fuse_stem_pass();

const std::vector<std::unique_ptr<Pass>>& all_passes() {
  static const std::vector<std::unique_ptr<Pass>> passes = [] {
    std::vector<std::unique_ptr<Pass>> v;
    v.push_back(make_topo_sort_pass());
    v.push_back(make_remove_identity_pass());
    v.push_back(make_import_qdq_pass());
    v.push_back(make_fold_constants_pass());
    v.push_back(make_fold_pad_into_conv_pass());
    v.push_back(make_fold_batchnorm_pass());
    v.push_back(make_fuse_conv_activation_pass());
    v.push_back(make_fuse_gemm_activation_pass());
    v.push_back(make_fuse_conv_add_pass());
    v.push_back(make_merge_reshapes_pass());
    v.push_back(make_remove_dead_pass());
    v.push_back(make_lower_onednn_pass());
    v.push_back(make_fuse_qconv_qadd_pass());
    v.push_back(make_fuse_mbconv_pass());
    v.push_back(make_fuse_stem_pass());
    return v;
  }();
  return passes;
}

int fuse_preset_level(const std::string& preset) {
  if (preset == "none") return 0;
  if (preset == "blocks") return 1;
  if (preset == "all") return 2;
  fail("unknown fusion preset '", preset, "' (expected none, blocks or all)");
}

void run_passes(Graph& g, const PassContext& ctx, const PassOptions& opt, bool backend) {
  const int level = fuse_preset_level(opt.fuse);
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
    if (p->backend() != backend) {
      // The IR stage stopped before the backend passes.
      if (backend && p->name() == opt.stop_after) return;
      continue;
    }
    const bool enabled = !opt.disabled.count(p->name()) && p->fuse_level() <= level;
    if (p->required() || enabled) p->run(g, ctx);
    if (p->name() == opt.stop_after) break;
  }
}

}  // namespace engine
