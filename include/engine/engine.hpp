// A small C++ API over the C API (engine_c.h), header-only: what an application embedding the
// engine includes. RAII handles, errors as engine::api::Error exceptions thrown on the
// application's side of the boundary, sessions keep their model alive. Links against the shared
// library (CMake target engine::engine); see docs/API.md.
//
//   engine::api::Options o;
//   o.precision = ENGINE_INT8;
//   o.stats_file = "stats.json";
//   const engine::api::Model model = engine::api::Model::load("model.onnx", o);
//   engine::api::Session s = model.session();   // one per thread
//   s.run({{"input", {1, 3, 224, 224}, pixels.data()}});
//   const engine::api::View y = s.output("logits");
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine_c.h"

namespace engine::api {

class Error : public std::runtime_error {
 public:
  Error(engine_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  engine_status status() const { return status_; }

 private:
  engine_status status_;
};

inline void check(engine_status s) {
  if (s != ENGINE_OK) throw Error(s, engine_last_error());
}

struct Options {
  engine_precision precision = ENGINE_FP32;
  int threads = 0;         // per run; 0 = all cores
  std::string stats_file;  // INT8 of an FP32 model: `engine quantize --stats-out` output
  std::string config_file;
  bool per_tensor = false;
  std::string backend;  // "" (onednn) or "reference"
};

struct TensorInfo {
  std::string name;
  engine_dtype dtype = ENGINE_DTYPE_UNDEFINED;
  std::vector<int64_t> shape;  // -1: dynamic
};

// An input: float32 unless said otherwise; the data is read during run() only.
struct Input {
  std::string name;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  engine_dtype dtype = ENGINE_DTYPE_FLOAT32;
};

// An output of a session's last run; valid until its next run or its end.
struct View {
  engine_dtype dtype = ENGINE_DTYPE_UNDEFINED;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  const float* floats() const {
    if (dtype != ENGINE_DTYPE_FLOAT32) throw Error(ENGINE_ERROR_INVALID_ARGUMENT, "not float32");
    return static_cast<const float*>(data);
  }
};

class Session;

class Model {
 public:
  static Model load(const std::string& path, const Options& o = {}) {
    const Raw r(o);
    engine_model* m = nullptr;
    check(engine_model_load(path.c_str(), &r.opt, &m));
    return Model(m);
  }
  static Model load_from_memory(const void* data, size_t size, const Options& o = {}) {
    const Raw r(o);
    engine_model* m = nullptr;
    check(engine_model_load_memory(data, size, &r.opt, &m));
    return Model(m);
  }
  std::vector<TensorInfo> inputs() const { return infos(true); }
  std::vector<TensorInfo> outputs() const { return infos(false); }
  Session session() const;

 private:
  friend class Session;
  // engine_options pointing into a copy of Options' strings.
  struct Raw {
    explicit Raw(const Options& o) : src(o) {
      engine_options_init(&opt);
      opt.precision = src.precision;
      opt.threads = src.threads;
      opt.stats_file = src.stats_file.empty() ? nullptr : src.stats_file.c_str();
      opt.config_file = src.config_file.empty() ? nullptr : src.config_file.c_str();
      opt.per_tensor = src.per_tensor ? 1 : 0;
      opt.backend = src.backend.empty() ? nullptr : src.backend.c_str();
    }
    Options src;
    engine_options opt;
  };
  explicit Model(engine_model* m) : h_(m, engine_model_free) {}
  std::vector<TensorInfo> infos(bool in) const {
    std::vector<TensorInfo> v;
    const size_t n = in ? engine_model_input_count(h_.get()) : engine_model_output_count(h_.get());
    for (size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      engine_dtype dt = ENGINE_DTYPE_UNDEFINED;
      const int64_t* shape = nullptr;
      size_t rank = 0;
      check(in ? engine_model_input(h_.get(), i, &name, &dt, &shape, &rank)
               : engine_model_output(h_.get(), i, &name, &dt, &shape, &rank));
      v.push_back({name, dt, std::vector<int64_t>(shape, shape + rank)});
    }
    return v;
  }
  std::shared_ptr<engine_model> h_;
};

// Runs of one model; use one session per thread at a time (many sessions may share a model).
class Session {
 public:
  void run(const std::vector<Input>& inputs) {
    std::vector<const char*> names;
    std::vector<engine_tensor> ts;
    for (const Input& i : inputs) {
      names.push_back(i.name.c_str());
      ts.push_back({i.dtype, i.shape.data(), i.shape.size(), i.data});
    }
    check(engine_session_run(h_.get(), inputs.size(), names.data(), ts.data()));
  }
  View output(const std::string& name) const {
    engine_tensor t{};
    check(engine_session_output(h_.get(), name.c_str(), &t));
    return {t.dtype, std::vector<int64_t>(t.shape, t.shape + t.rank), t.data};
  }

 private:
  friend class Model;
  explicit Session(std::shared_ptr<engine_model> model) : model_(std::move(model)) {
    engine_session* s = nullptr;
    check(engine_session_create(model_.get(), &s));
    h_.reset(s);
  }
  std::shared_ptr<engine_model> model_;  // outlives the session handle (declared first)
  std::unique_ptr<engine_session, void (*)(engine_session*)> h_{nullptr, engine_session_free};
};

inline Session Model::session() const {
  return Session(h_);
}

}  // namespace engine::api
