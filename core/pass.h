// Graph passes: small named rewrites, listed in order in core/pass_registry.cpp.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/op_registry.h"

namespace engine {

struct PassContext {
  const OpRegistry& registry;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // Fusion level: 0 = not a fusion (cleanup passes, always run), 1 = "blocks" (BatchNormalization
  // folding, conv/gemm + activation), 2 = "all" (residual adds, pads, reshapes).
  virtual int fuse_level() const { return 0; }
  // Whether `--fuse none` keeps it on (cleanup passes) or turns it off (fusions).
  virtual bool is_fusion() const { return fuse_level() > 0; }
  // Required passes cannot be switched off (e.g. topological sort).
  virtual bool required() const { return false; }
  // Backend passes run on the graph the executor runs (Model keeps the IR before them, so
  // quantization and native files see the plain-layout graph): the oneDNN lowering and what
  // fuses lowered ops. The others run on the IR.
  virtual bool backend() const { return false; }
  // Returns true if the graph changed.
  virtual bool run(Graph& g, const PassContext& ctx) const = 0;
};

// All passes in execution order.
const std::vector<std::unique_ptr<Pass>>& all_passes();

struct PassOptions {
  std::set<std::string> disabled;  // pass names
  std::string stop_after;          // run passes up to and including this one ("" = all)
  // Fusion preset: "none" | "blocks" | "all"; passes whose fuse_level() exceeds it are skipped.
  std::string fuse = "all";
};

// Level of a fusion preset ("none" 0, "blocks" 1, "all" 2); throws for any other name.
int fuse_preset_level(const std::string& preset);

// Runs the enabled IR passes (backend = false) or backend passes (backend = true) in order, up
// to opt.stop_after (when it names an IR pass, no backend pass runs); throws for an unknown pass
// name in `disabled`/`stop_after` or an unknown `fuse` preset.
void run_passes(Graph& g, const PassContext& ctx, const PassOptions& opt, bool backend = false);

// Shared graph utilities used by passes.
void topological_sort(Graph& g);  // throws on cycles and on inputs nobody produces
void remove_nodes(Graph& g, const std::vector<bool>& remove);

}  // namespace engine
