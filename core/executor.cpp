#include "core/executor.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>

namespace engine {

namespace {

// Runs f, prefixing any error with the node's label so every message says where it happened.
template <class F>
auto with_node_context(const Node& node, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    fail(node.label(), ": ", e.what());
  } catch (const std::bad_alloc&) {
    fail(node.label(), ": out of memory");
  } catch (const std::exception& e) {
    fail(node.label(), ": ", e.what());
  }
}

const OpSchema& schema_of(const OpRegistry& reg, const Node& node) {
  const OpSchema* s = reg.find(node.domain, node.op_type);
  if (!s)
    fail(node.label(), ": operator ", node.domain.empty() ? "" : node.domain + ".", node.op_type,
         " is not supported");
  return *s;
}

}  // namespace

InferContext infer_node(const OpRegistry& reg, const Node& node,
                        std::vector<InferContext::Input> inputs) {
  const OpSchema& s = schema_of(reg, node);
  return with_node_context(node, [&] {
    InferContext ctx(node, std::move(inputs));
    s.infer(ctx);
    for (int i = 0; i < ctx.num_outputs(); ++i)
      ENGINE_CHECK(ctx.outputs()[size_t(i)].set, "shape inference gave no output ", i);
    return ctx;
  });
}

std::vector<Tensor> eval_node(const OpRegistry& reg, const Node& node,
                              const std::vector<const Tensor*>& inputs, int threads) {
  std::vector<InferContext::Input> in;
  for (const Tensor* t : inputs) {
    InferContext::Input x;
    if (t) x = {t->dtype(), t->shape(), t};
    in.push_back(x);
  }
  InferContext ctx = infer_node(reg, node, std::move(in));
  const OpSchema& s = schema_of(reg, node);
  return with_node_context(node, [&] {
    std::vector<Tensor> outs;
    const auto& known = ctx.known_outputs();
    bool all_known = !known.empty();
    for (size_t i = 0; i < ctx.outputs().size(); ++i) {
      if (i < known.size() && known[i].defined()) {
        outs.push_back(known[i]);
      } else {
        all_known = false;
        outs.emplace_back(ctx.outputs()[i].dtype, ctx.outputs()[i].shape);
      }
    }
    if (!all_known) {
      const std::shared_ptr<const void> state = s.prepare ? s.prepare(ctx) : nullptr;
      KernelContext kc{node, inputs, {}, threads, state.get()};
      for (Tensor& t : outs) kc.outputs.push_back(&t);
      s.kernel(kc);
    }
    return outs;
  });
}

bool is_plan_time_input(const Tensor& t) {
  // Data (an image batch, even a tiny one) always runs: folding it would skip the kernels and
  // build a plan per input value.
  const bool integer = t.dtype() == DType::I64 || t.dtype() == DType::I32;
  return t.numel() <= 64 && (integer || t.rank() <= 1);
}

Plan build_plan(const Graph& g, const OpRegistry& reg, const std::vector<Dims>& input_shapes,
                const std::vector<Tensor>& input_values, bool prepare, int64_t fold_limit) {
  Plan p;
  p.prepared = prepare;
  const size_t nv = g.values.size();
  p.info.resize(nv);
  p.known.resize(nv);
  p.offset.assign(nv, -1);
  p.state.resize(g.nodes.size());
  ENGINE_CHECK(input_shapes.size() == g.inputs.size(), "expected ", g.inputs.size(),
               " inputs, got ", input_shapes.size());
  for (size_t i = 0; i < nv; ++i) {
    const Value& v = g.values[i];
    if (v.constant) {
      p.known[i] = *v.constant;
      p.info[i] = {v.constant->dtype(), v.constant->shape()};
    }
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Value& v = g.value(g.inputs[i]);
    p.info[size_t(g.inputs[i])] = {v.dtype, input_shapes[i]};
    if (i < input_values.size() && input_values[i].defined())
      p.known[size_t(g.inputs[i])] = input_values[i].clone();
  }
  // Specialize: infer every node; fold the ones whose inputs are all known.
  std::vector<int> first_def(nv, -1), last_use(nv, -1);
  std::vector<int> inplace_input;  // per step: OpSchema::inplace_input of its op
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& node = g.nodes[ni];
    std::vector<InferContext::Input> in;
    std::vector<const Tensor*> in_t;
    bool all_known = true;
    for (int id : node.inputs) {
      InferContext::Input x;
      if (id >= 0) {
        ENGINE_CHECK(p.info[size_t(id)].dtype != DType::Undefined, node.label(), ": input '",
                     g.value(id).name, "' is used before it is computed");
        const Tensor* kv = p.known[size_t(id)] ? &*p.known[size_t(id)] : nullptr;
        x = {p.info[size_t(id)].dtype, p.info[size_t(id)].shape, kv};
        if (!kv) all_known = false;
        in_t.push_back(kv);
      } else {
        in_t.push_back(nullptr);
      }
      in.push_back(x);
    }
    InferContext ctx = infer_node(reg, node, std::move(in));
    const auto& known = ctx.known_outputs();
    bool outputs_known = true;
    for (size_t o = 0; o < node.outputs.size(); ++o) {
      const auto& out = ctx.outputs()[o];
      p.info[size_t(node.outputs[o])] = {out.dtype, out.shape};
      if (o < known.size() && known[o].defined())
        p.known[size_t(node.outputs[o])] = known[o];
      else
        outputs_known = false;
    }
    if (outputs_known) continue;
    auto small = [&] {
      for (const auto& out : ctx.outputs())
        if (checked_numel(out.shape) > fold_limit) return false;
      return true;
    };
    if (all_known && (fold_limit < 0 || small())) {
      std::vector<Tensor> outs = eval_node(reg, node, in_t);
      for (size_t o = 0; o < outs.size(); ++o)
        p.known[size_t(node.outputs[o])] = std::move(outs[o]);
      continue;
    }
    const OpSchema& s = schema_of(reg, node);
    if (s.prepare && prepare) p.state[ni] = with_node_context(node, [&] { return s.prepare(ctx); });
    const int step = int(p.steps.size());
    p.steps.push_back(int(ni));
    inplace_input.push_back(s.inplace_input);
    for (int id : node.inputs)
      if (id >= 0) last_use[size_t(id)] = step;
    for (int id : node.outputs) first_def[size_t(id)] = step;
  }
  const int end = int(p.steps.size());
  // Steps no graph output depends on (walking back from the outputs through computed values).
  {
    std::vector<bool> needed(nv, false);
    for (int id : g.outputs) needed[size_t(id)] = true;
    p.unused.assign(size_t(end), true);
    for (int st = end - 1; st >= 0; --st) {
      const Node& node = g.nodes[size_t(p.steps[size_t(st)])];
      bool live = false;
      for (int id : node.outputs) live = live || (id >= 0 && needed[size_t(id)]);
      if (!live) continue;
      p.unused[size_t(st)] = false;
      for (int id : node.inputs)
        if (id >= 0 && !p.known[size_t(id)]) needed[size_t(id)] = true;
    }
  }
  for (int id : g.outputs) last_use[size_t(id)] = end;
  // In-place outputs: output 0 shares the buffer of the input it overwrites (alias[out] = the
  // value owning the buffer), whose lifetime then extends to the output's last use.
  std::vector<int> alias(nv, -1);
  auto in_arena = [&](int id) {
    return id >= 0 && first_def[size_t(id)] >= 0 && !p.known[size_t(id)];
  };
  for (int st = 0; st < end; ++st) {
    const Node& node = g.nodes[size_t(p.steps[size_t(st)])];
    const int slot = inplace_input[size_t(st)];
    if (slot < 0 || size_t(slot) >= node.inputs.size()) continue;
    const int in = node.inputs[size_t(slot)], out = node.outputs[0];
    if (!in_arena(in) || !in_arena(out) || last_use[size_t(in)] != st) continue;
    // Not when the node reads the same value through another input (conv(x) + x).
    if (std::count(node.inputs.begin(), node.inputs.end(), in) != 1) continue;
    if (p.info[size_t(in)].dtype != p.info[size_t(out)].dtype ||
        p.info[size_t(in)].shape != p.info[size_t(out)].shape)
      continue;
    const int root = alias[size_t(in)] >= 0 ? alias[size_t(in)] : in;
    alias[size_t(out)] = root;
    last_use[size_t(root)] = std::max(st, last_use[size_t(out)]);
  }
  // Arena for everything computed at run time.
  std::vector<BufferRequest> req;
  std::vector<int> req_value;
  for (size_t i = 0; i < nv; ++i) {
    if (first_def[i] < 0 || p.known[i] || alias[i] >= 0) continue;
    const ValueInfo& vi = p.info[i];
    const size_t bytes = size_t(checked_numel(vi.shape)) * dtype_size(vi.dtype);
    const int last = last_use[i] < 0 ? first_def[i] : last_use[i];  // unused outputs
    req.push_back({bytes, first_def[i], last});
    req_value.push_back(int(i));
  }
  p.memory = plan_memory(req);
  for (size_t r = 0; r < req.size(); ++r)
    p.offset[size_t(req_value[r])] = int64_t(p.memory.offsets[r]);
  for (size_t i = 0; i < nv; ++i)
    if (alias[i] >= 0) p.offset[i] = p.offset[size_t(alias[i])];
  p.batch_separable = batch_separable(g, p);
  return p;
}

Executor::Executor(std::shared_ptr<const Graph> graph, const OpRegistry& registry)
    : graph_(std::move(graph)), registry_(registry) {}

std::shared_ptr<const Plan> Executor::plan_for(const std::vector<Dims>& input_shapes,
                                               const std::vector<Tensor>& input_values,
                                               bool prepare) const {
  std::string value_key;
  for (const Tensor& t : input_values)
    if (t.defined())
      value_key.append(static_cast<const char*>(t.raw()), t.nbytes()).push_back('|');
    else
      value_key.push_back('-');
  auto key = std::make_pair(input_shapes, value_key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it != plans_.end() && (it->second->prepared || !prepare)) return it->second;
  auto plan = std::make_shared<const Plan>(
      build_plan(*graph_, registry_, input_shapes, input_values, prepare));
  if (plans_.size() >= 16) plans_.clear();  // bound the cache for callers varying inputs
  plans_[key] = plan;
  return plan;
}

Executor::Arena Executor::take_arena(size_t bytes) const {
  bytes = std::max<size_t>(bytes, 64);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The smallest free arena that is large enough.
    auto best = arenas_.end();
    for (auto it = arenas_.begin(); it != arenas_.end(); ++it)
      if (it->bytes >= bytes && (best == arenas_.end() || it->bytes < best->bytes)) best = it;
    if (best != arenas_.end()) {
      Arena a = std::move(*best);
      arenas_.erase(best);
      return a;
    }
  }
  Arena a;
  a.bytes = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  a.data.reset(std::aligned_alloc(kBufferAlignment, a.bytes));
  if (!a.data) fail("out of memory allocating the ", bytes, "-byte arena");
  return a;
}

void Executor::give_back(Arena a) const {
  std::lock_guard<std::mutex> lock(mu_);
  arenas_.push_back(std::move(a));
  // Keep the largest few (one per concurrent caller is enough in practice).
  std::sort(arenas_.begin(), arenas_.end(),
            [](const Arena& x, const Arena& y) { return x.bytes > y.bytes; });
  if (arenas_.size() > 4) arenas_.resize(4);
}

void Executor::check_inputs(const std::vector<Tensor>& inputs) const {
  const Graph& g = *graph_;
  ENGINE_CHECK(inputs.size() == g.inputs.size(), "the model has ", g.inputs.size(), " inputs, got ",
               inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = g.value(g.inputs[i]);
    const Tensor& t = inputs[i];
    ENGINE_CHECK(t.defined(), "input '", v.name, "' is missing");
    ENGINE_CHECK(t.dtype() == v.dtype, "input '", v.name, "' must be ", dtype_name(v.dtype),
                 ", got ", dtype_name(t.dtype()));
    if (!v.has_shape) continue;
    bool ok = t.rank() == int(v.shape.size());
    for (size_t d = 0; ok && d < v.shape.size(); ++d)
      if (v.shape[d] >= 0 && v.shape[d] != t.shape()[d]) ok = false;
    ENGINE_CHECK(ok, "input '", v.name, "' must have shape ", dims_str(v.shape), ", got ",
                 dims_str(t.shape()));
  }
}

int Executor::split_threads(const std::vector<Tensor>& inputs, int threads) const {
  if (inputs.empty() || inputs[0].rank() == 0) return 0;
  const int64_t N = inputs[0].shape()[0];
  for (const Tensor& t : inputs)
    if (t.rank() == 0 || t.shape()[0] != N) return 0;
  const int T = int(std::min<int64_t>(threads, N));
  // Even shares (at most one sample apart) only when that wastes little.
  if (T < 2 || (N % T != 0 && N < 4 * int64_t(T))) return 0;
  for (int id : graph_->inputs) {  // a model made for one batch size takes no slices
    const Value& v = graph_->value(id);
    if (v.has_shape && (v.shape.empty() || v.shape[0] >= 0)) return 0;
  }
  return T;
}

std::vector<Tensor> Executor::run_split(const std::vector<Tensor>& inputs, const Plan& plan,
                                        const RunOptions& opt, int T) const {
  const Graph& g = *graph_;
  const int64_t N = inputs[0].shape()[0];
  // Chunks of at most kStep samples (measured on resnet50 / mobilenet_v2 INT8, one core: 4
  // samples per run are as fast per sample as any larger batch), a multiple of T of them, sizes
  // at most one apart; threads take the next chunk when done (another process slowing one core
  // does not leave the other idle).
  constexpr int64_t kStep = 4;
  struct Job {
    int64_t b0, n;
  };
  const int64_t chunks = T * ((N + T * kStep - 1) / (T * kStep));
  std::vector<Job> jobs;
  for (int64_t i = 0; i < chunks; ++i)
    jobs.push_back({i * N / chunks, (i + 1) * N / chunks - i * N / chunks});
  const auto slice = [&](int64_t b0, int64_t n) {
    std::vector<Tensor> v;
    for (const Tensor& t : inputs) {
      Dims d = t.shape();
      const size_t row = t.nbytes() / size_t(d[0]);
      d[0] = n;
      v.push_back(Tensor::view(t.dtype(), d,
                               const_cast<char*>(static_cast<const char*>(t.raw())) + b0 * row));
    }
    return v;
  };
  // Plans for the slice shapes, made here (not concurrently); tiny slices would be planned per
  // value (plan-time inputs): keep the batch together then.
  std::set<int64_t> sizes;
  for (const Job& j : jobs) sizes.insert(j.n);
  for (int64_t n : sizes) {
    std::vector<Dims> shapes;
    for (const Tensor& t : slice(0, n)) {
      if (is_plan_time_input(t)) return {};
      shapes.push_back(t.shape());
    }
    try {
      if (!plan_for(shapes, std::vector<Tensor>(inputs.size()))->batch_separable) return {};
    } catch (const std::exception&) {  // e.g. a Reshape to a fixed batch size
      return {};
    }
  }
  std::vector<Tensor> outs;
  for (int id : g.outputs)
    outs.emplace_back(plan.info[size_t(id)].dtype, plan.info[size_t(id)].shape);
  RunOptions one = opt;
  one.threads = 1;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
  for (int64_t i = 0; i < chunks; ++i) {
    const Job& j = jobs[size_t(i)];
    try {
      const std::vector<Tensor> part = run(slice(j.b0, j.n), one);
      for (size_t o = 0; o < outs.size(); ++o) {
        const size_t row = outs[o].nbytes() / size_t(outs[o].shape()[0]);
        ENGINE_CHECK(part[o].nbytes() == row * size_t(j.n), "batch split: output '",
                     g.value(g.outputs[o]).name, "' has shape ", dims_str(part[o].shape()), " for ",
                     j.n, " samples");
        std::memcpy(static_cast<char*>(outs[o].raw()) + j.b0 * row, part[o].raw(),
                    part[o].nbytes());
      }
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return outs;
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs, const RunOptions& opt) const {
  check_inputs(inputs);
  const Graph& g = *graph_;
  std::vector<Dims> shapes;
  std::vector<Tensor> values;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape());
    values.push_back(is_plan_time_input(t) ? t : Tensor());
  }
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  // The run's thread count also holds while plans are built (oneDNN reorders the weights then)
  // and is restored on any exit; it is per calling thread.
  struct ThreadCount {
    int saved = omp_get_max_threads();
    explicit ThreadCount(int n) { omp_set_num_threads(n); }
    ~ThreadCount() { omp_set_num_threads(saved); }
  } thread_count(threads);
  const int split = opt.batch_split && !opt.after_node ? split_threads(inputs, threads) : 0;
  if (split > 1) {
    // The whole-batch plan is only looked at here: its kernels are prepared only if it runs.
    const std::shared_ptr<const Plan> shapes_only = plan_for(shapes, values, false);
    if (shapes_only->batch_separable) {
      std::vector<Tensor> outs = run_split(inputs, *shapes_only, opt, split);
      if (!outs.empty()) return outs;
    }
  }
  std::shared_ptr<const Plan> plan = plan_for(shapes, values);

  // Arena without zero-fill: every kernel writes its whole output.
  struct Lease {
    const Executor& e;
    Arena a;
    ~Lease() { e.give_back(std::move(a)); }
  } lease{*this, take_arena(plan->memory.arena_bytes)};
  auto* base = static_cast<char*>(lease.a.data.get());

  std::vector<Tensor> vals(g.values.size());
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (plan->known[i]) {
      vals[i] = *plan->known[i];
    } else if (plan->offset[i] >= 0) {
      vals[i] = Tensor::view(plan->info[i].dtype, plan->info[i].shape, base + plan->offset[i]);
    }
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) vals[size_t(g.inputs[i])] = inputs[i];

  for (size_t st = 0; st < plan->steps.size(); ++st) {
    if (plan->unused[st] && !(opt.after_node && opt.run_unused)) continue;
    const int ni = plan->steps[st];
    const Node& node = g.nodes[size_t(ni)];
    KernelContext kc{node, {}, {}, threads, plan->state[size_t(ni)].get()};
    for (int id : node.inputs) kc.inputs.push_back(id >= 0 ? &vals[size_t(id)] : nullptr);
    for (int id : node.outputs) kc.outputs.push_back(&vals[size_t(id)]);
    const OpSchema& s = schema_of(registry_, node);
    with_node_context(node, [&] { s.kernel(kc); });
    if (opt.after_node) opt.after_node(node, kc.outputs);
  }
  std::vector<Tensor> outs;
  for (int id : g.outputs) outs.push_back(vals[size_t(id)].clone());
  return outs;
}

}  // namespace engine
