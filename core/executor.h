// Runs a graph through the kernel registry.
//
// A graph may have dynamic dims (batch). Before running, the executor specializes it to the
// concrete input shapes: it infers every shape, evaluates whatever is computable from shapes and
// constants alone (Shape -> Gather -> Concat chains), and plans one arena for the activations by
// liveness. Plans are cached per input-shape signature, so the run loop only calls kernels.
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/graph.h"
#include "core/memory_planner.h"
#include "core/op_registry.h"

namespace engine {

struct ValueInfo {
  DType dtype = DType::Undefined;
  Dims shape;
};

// Inference for one node from its input infos; throws with the node's label on failure.
InferContext infer_node(const OpRegistry& reg, const Node& node,
                        std::vector<InferContext::Input> inputs);
// Evaluates one node on known inputs (constant folding, plan-time shape computations).
std::vector<Tensor> eval_node(const OpRegistry& reg, const Node& node,
                              const std::vector<const Tensor*>& inputs, int threads = 1);

struct Plan {
  std::vector<ValueInfo> info;               // per value id
  std::vector<std::optional<Tensor>> known;  // constants and plan-time results
  std::vector<int> steps;                    // node indices executed at run time
  // Per step: no graph output depends on it (its outputs feed only nodes folded at plan time,
  // e.g. a Shape). Run only when RunOptions::after_node wants to see every value.
  std::vector<bool> unused;
  std::vector<int64_t> offset;                     // arena offset per value, -1 if not in the arena
  std::vector<std::shared_ptr<const void>> state;  // per node: what its op's prepare built
  MemoryPlan memory;
  bool batch_separable = false;  // see batch_separable()
  bool prepared = true;          // false: shapes only, no kernel state (not runnable)
};

// Whether every executed node of p treats the batch elements (dimension 0 of every input and
// output, N >= 2) independently: a conservative whitelist (core/batch_split.cpp).
bool batch_separable(const Graph& g, const Plan& p);

// `input_values`: per graph input, its data when known at plan time (tiny inputs, which usually
// are shape-like: Reshape's shape, Slice's starts, Resize's scales), else an undefined Tensor.
// prepare = false skips the kernels' prepare (packed weights, primitives): a plan for its shapes,
// folded values and batch_separable only.
// fold_limit >= 0: nodes with all inputs known are folded only when every output has at most
// fold_limit elements; larger ones stay steps (for shape inference, which needs shape-like values
// but not, say, every dequantized weight).
Plan build_plan(const Graph& g, const OpRegistry& reg, const std::vector<Dims>& input_shapes,
                const std::vector<Tensor>& input_values = {}, bool prepare = true,
                int64_t fold_limit = -1);

// Tiny shape-like graph inputs (<= 64 elements, int32 / int64 or rank <= 1: Reshape shapes,
// Resize scales) are known when planning; the plan is cached per value.
bool is_plan_time_input(const Tensor& t);

struct RunOptions {
  int threads = 0;  // 0: OpenMP default
  // Called after each executed node with its outputs (calibration, debugging, dumps).
  std::function<void(const Node&, const std::vector<Tensor*>&)> after_node;
  // With after_node: also run the steps no output depends on (Plan::unused), so that every value
  // is seen. false: only what a plain run executes (profiling).
  bool run_unused = true;
  // With several threads and a batch-separable plan (and no after_node), each thread runs its
  // own slice of the batch through the whole graph, a few samples at a time, on one core:
  // activations stay in cache and no layer waits for the other threads. Results are identical
  // for integer graphs; float ones may differ in the last bits (other kernel blockings).
  bool batch_split = true;
};

class Executor {
 public:
  Executor(std::shared_ptr<const Graph> graph, const OpRegistry& registry);
  // Inputs in graph.inputs order; outputs in graph.outputs order (owned copies).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const RunOptions& opt = {}) const;
  // The cached plan for these inputs; prepare = false also takes (or builds) an unprepared one.
  std::shared_ptr<const Plan> plan_for(const std::vector<Dims>& input_shapes,
                                       const std::vector<Tensor>& input_values = {},
                                       bool prepare = true) const;
  const Graph& graph() const { return *graph_; }
  std::shared_ptr<const Graph> graph_ptr() const { return graph_; }

 private:
  void check_inputs(const std::vector<Tensor>& inputs) const;
  // How many threads would run batch slices of these inputs side by side (RunOptions::
  // batch_split): 0 unless every input has the same dimension 0 N >= 2, the model's batch is
  // dynamic and the N samples share out evenly enough. Cheap: no plan needed.
  int split_threads(const std::vector<Tensor>& inputs, int threads) const;
  // run() on batch slices, T of them at once; empty when the slices' plans do not allow it (then
  // run() goes on with the whole batch).
  std::vector<Tensor> run_split(const std::vector<Tensor>& inputs, const Plan& plan,
                                const RunOptions& opt, int T) const;
  std::shared_ptr<const Graph> graph_;
  const OpRegistry& registry_;
  // Activation arenas kept between runs (fresh pages would be faulted in and zeroed by the kernel
  // on every run: hundreds of MB at batch 32). A run takes one at least as large as its plan
  // needs and gives it back; concurrent runs get different arenas.
  struct Arena {
    size_t bytes = 0;
    std::unique_ptr<void, void (*)(void*)> data{nullptr, std::free};
  };
  Arena take_arena(size_t bytes) const;
  void give_back(Arena a) const;
  mutable std::vector<Arena> arenas_;
  mutable std::mutex mu_;
  // Key: input shapes, plus the bytes of the plan-time (tiny) inputs.
  mutable std::map<std::pair<std::vector<Dims>, std::string>, std::shared_ptr<const Plan>> plans_;
};

}  // namespace engine
