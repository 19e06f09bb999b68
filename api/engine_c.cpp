// The C API (include/engine/engine_c.h) over engine::Model: exceptions become status codes and
// a per-thread message; inputs are wrapped as views of the caller's buffers (never written).
#include "engine/engine_c.h"

#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "quant/calibrate.h"

struct engine_model {
  std::shared_ptr<const engine::Model> model;
  int threads = 0;
  std::vector<std::string> names[2];  // inputs, outputs
  std::vector<std::vector<int64_t>> shapes[2];
  std::vector<engine_dtype> dtypes[2];
};

struct engine_session {
  std::shared_ptr<const engine::Model> model;
  const engine_model* owner = nullptr;
  std::vector<engine::Tensor> outputs;
  std::vector<std::vector<int64_t>> shapes;
};

namespace {

thread_local std::string g_error;

engine_status fail_with(engine_status s, const std::string& msg) {
  g_error = msg;
  return s;
}

// Runs f, turning exceptions into a status (`code` for engine errors) and the message.
template <class F>
engine_status guard(engine_status code, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail_with(ENGINE_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail_with(code, e.what());
  } catch (...) {
    return fail_with(code, "unknown error");
  }
}

engine_model* wrap(engine::Model m, int threads) {
  auto* h = new engine_model;
  h->model = std::make_shared<const engine::Model>(std::move(m));
  h->threads = threads;
  for (int k = 0; k < 2; ++k)
    for (const engine::IoInfo& io : k == 0 ? h->model->inputs() : h->model->outputs()) {
      h->names[k].push_back(io.name);
      h->shapes[k].push_back(io.shape);
      h->dtypes[k].push_back(engine_dtype(int(io.dtype)));
    }
  return h;
}

engine::Model prepare(engine::Model m, const engine_options& o) {
  if (o.precision != ENGINE_INT8 || m.is_quantized()) return m;
  ENGINE_CHECK(o.stats_file && *o.stats_file,
               "INT8 needs a stats_file (written by `engine quantize --stats-out`) for an FP32 "
               "model");
  engine::quant::QuantConfig cfg;
  cfg.defaults.per_channel = o.per_tensor == 0;
  if (o.config_file && *o.config_file) engine::quant::load_config_file(o.config_file, cfg);
  cfg.validate();
  std::map<std::string, engine::quant::Range> overrides;
  const engine::quant::StatsMap stats = engine::quant::read_stats_file(o.stats_file, &overrides);
  return m.quantize(cfg, stats, overrides);
}

engine::ModelOptions model_options(const engine_options& o) {
  engine::ModelOptions mo;
  mo.threads = o.threads;
  if (o.backend && *o.backend) mo.backend = o.backend;
  return mo;
}

// engine_model_load*: options defaulted, loaded by `load`, prepared (INT8), wrapped.
template <class Load>
engine_status load_with(const engine_options* options, engine_model** model, Load&& load) {
  if (!model) return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "model is NULL");
  *model = nullptr;
  engine_options o;
  engine_options_init(&o);
  if (options) o = *options;
  return guard(ENGINE_ERROR_LOAD, [&] {
    *model = wrap(prepare(load(model_options(o)), o), o.threads);
    return ENGINE_OK;
  });
}

engine_status io_info(const engine_model* m, int k, size_t i, const char** name,
                      engine_dtype* dtype, const int64_t** shape, size_t* rank) {
  if (!m) return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "model is NULL");
  if (i >= m->names[k].size())
    return fail_with(ENGINE_ERROR_INVALID_ARGUMENT,
                     engine::str_cat(k == 0 ? "input" : "output", " index ", i,
                                     " is out of range (the model has ", m->names[k].size(), ")"));
  if (name) *name = m->names[k][i].c_str();
  if (dtype) *dtype = m->dtypes[k][i];
  if (shape) *shape = m->shapes[k][i].data();
  if (rank) *rank = m->shapes[k][i].size();
  return ENGINE_OK;
}

}  // namespace

extern "C" {

const char* engine_version(void) {
  return "0.1";
}

const char* engine_last_error(void) {
  return g_error.c_str();
}

void engine_options_init(engine_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof(*o));
  o->precision = ENGINE_FP32;
}

engine_status engine_model_load(const char* path, const engine_options* options,
                                engine_model** model) {
  if (!path) return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "path is NULL");
  return load_with(options, model,
                   [&](const engine::ModelOptions& mo) { return engine::Model::load(path, mo); });
}

engine_status engine_model_load_memory(const void* data, size_t size, const engine_options* options,
                                       engine_model** model) {
  if (!data) return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "data is NULL");
  return load_with(options, model, [&](const engine::ModelOptions& mo) {
    return engine::Model::load_from_memory(std::string(static_cast<const char*>(data), size), mo);
  });
}

void engine_model_free(engine_model* model) {
  delete model;
}

size_t engine_model_input_count(const engine_model* m) {
  return m ? m->names[0].size() : 0;
}
size_t engine_model_output_count(const engine_model* m) {
  return m ? m->names[1].size() : 0;
}

engine_status engine_model_input(const engine_model* m, size_t i, const char** name,
                                 engine_dtype* dtype, const int64_t** shape, size_t* rank) {
  return io_info(m, 0, i, name, dtype, shape, rank);
}
engine_status engine_model_output(const engine_model* m, size_t i, const char** name,
                                  engine_dtype* dtype, const int64_t** shape, size_t* rank) {
  return io_info(m, 1, i, name, dtype, shape, rank);
}

engine_status engine_session_create(const engine_model* model, engine_session** session) {
  if (!model || !session)
    return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "model or session is NULL");
  return guard(ENGINE_ERROR_RUN, [&] {
    auto* s = new engine_session;
    s->model = model->model;
    s->owner = model;
    *session = s;
    return ENGINE_OK;
  });
}

void engine_session_free(engine_session* session) {
  delete session;
}

engine_status engine_session_run(engine_session* s, size_t count, const char* const* names,
                                 const engine_tensor* inputs) {
  if (!s) return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "session is NULL");
  if (count > 0 && (!names || !inputs))
    return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "names or inputs is NULL");
  const engine_model& m = *s->owner;
  std::vector<engine::Tensor> in(m.names[0].size());
  // Validation: every input named once, with the model's dtype and fixed dims.
  engine_status st = guard(ENGINE_ERROR_INVALID_ARGUMENT, [&] {
    for (size_t k = 0; k < count; ++k) {
      ENGINE_CHECK(names[k], "input name ", k, " is NULL");
      size_t i = 0;
      while (i < m.names[0].size() && m.names[0][i] != names[k]) ++i;
      ENGINE_CHECK(i < m.names[0].size(), "the model has no input named '", names[k], "'");
      ENGINE_CHECK(!in[i].defined(), "input '", names[k], "' is given twice");
      const engine_tensor& t = inputs[k];
      ENGINE_CHECK(t.dtype == m.dtypes[0][i], "input '", names[k], "': dtype ",
                   engine::dtype_name(engine::DType(int(t.dtype))), ", the model expects ",
                   engine::dtype_name(engine::DType(int(m.dtypes[0][i]))));
      ENGINE_CHECK(t.rank <= 16 && (t.rank == 0 || t.shape), "input '", names[k],
                   "': bad rank or NULL shape");
      const auto& want = m.shapes[0][i];
      engine::Dims d(t.shape, t.shape + t.rank);
      ENGINE_CHECK(want.empty() || d.size() == want.size(), "input '", names[k], "': shape ",
                   engine::dims_str(d), ", the model expects ", engine::dims_str(want));
      int64_t n = 1;
      for (size_t a = 0; a < d.size(); ++a) {
        ENGINE_CHECK(d[a] >= 0 && (want.empty() || want[a] < 0 || want[a] == d[a]), "input '",
                     names[k], "': shape ", engine::dims_str(d), ", the model expects ",
                     engine::dims_str(want));
        ENGINE_CHECK(d[a] == 0 || n <= std::numeric_limits<int64_t>::max() / d[a], "input '",
                     names[k], "': shape ", engine::dims_str(d), " overflows");
        n *= d[a];
      }
      ENGINE_CHECK(n == 0 || t.data, "input '", names[k], "': data is NULL");
      in[i] = engine::Tensor::view(engine::DType(int(t.dtype)), d, const_cast<void*>(t.data));
    }
    for (size_t i = 0; i < in.size(); ++i)
      ENGINE_CHECK(in[i].defined(), "input '", m.names[0][i], "' is missing");
    return ENGINE_OK;
  });
  if (st != ENGINE_OK) return st;
  return guard(ENGINE_ERROR_RUN, [&] {
    engine::RunOptions ro;
    ro.threads = m.threads;
    s->outputs = s->model->run(in, ro);
    s->shapes.clear();
    for (const engine::Tensor& t : s->outputs) s->shapes.push_back(t.shape());
    return ENGINE_OK;
  });
}

engine_status engine_session_output(const engine_session* s, const char* name, engine_tensor* out) {
  if (!s || !name || !out)
    return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "session, name or output is NULL");
  const engine_model& m = *s->owner;
  for (size_t i = 0; i < m.names[1].size(); ++i)
    if (m.names[1][i] == name) {
      if (i >= s->outputs.size())
        return fail_with(ENGINE_ERROR_INVALID_ARGUMENT, "no run yet on this session");
      const engine::Tensor& t = s->outputs[i];
      out->dtype = engine_dtype(int(t.dtype()));
      out->shape = s->shapes[i].data();
      out->rank = s->shapes[i].size();
      out->data = t.raw();
      return ENGINE_OK;
    }
  return fail_with(ENGINE_ERROR_INVALID_ARGUMENT,
                   engine::str_cat("the model has no output named '", name, "'"));
}

}  // extern "C"
