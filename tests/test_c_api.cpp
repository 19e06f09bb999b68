// The C API (include/engine/engine_c.h): results equal to the C++ API, clean error statuses, and
// one model shared by many sessions on many threads giving the same bits as a lone run.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/engine.hpp"
#include "engine/engine_c.h"
#include "model_builder.h"

namespace engine::test {
namespace {

const std::string kDemo = std::string(ENGINE_SOURCE_DIR) + "/demo/fashion_resnet8.onnx";

// A stats file for the demo model from Gaussian noise.
std::string demo_stats_file() {
  const Model m = Model::load(kDemo);
  int k = 0;
  int64_t samples = 0;
  const quant::StatsMap stats = m.calibrate(
      [&](std::vector<Tensor>& in) {
        if (k >= 2) return false;
        in = {random_tensor({4, 1, 28, 28}, 40 + uint64_t(k++))};
        return true;
      },
      quant::StatsOptions{}, &samples);
  const auto path = std::filesystem::temp_directory_path() / "engine_c_api_stats.json";
  std::ofstream(path) << quant::stats_to_json(stats, samples).dump();
  return path.string();
}

engine_model* load(engine_precision p, const std::string& stats = "") {
  engine_options o;
  engine_options_init(&o);
  o.precision = p;
  o.threads = 1;
  o.stats_file = stats.empty() ? nullptr : stats.c_str();
  engine_model* m = nullptr;
  const engine_status s = engine_model_load(kDemo.c_str(), &o, &m);
  INFO(engine_last_error());
  REQUIRE(s == ENGINE_OK);
  REQUIRE(m);
  return m;
}

std::vector<float> run_once(engine_session* s, const Tensor& x) {
  const int64_t* shape = x.shape().data();
  engine_tensor in{ENGINE_DTYPE_FLOAT32, shape, x.shape().size(), x.raw()};
  const char* name = "input";
  REQUIRE(engine_session_run(s, 1, &name, &in) == ENGINE_OK);
  engine_tensor out{};
  REQUIRE(engine_session_output(s, "logits", &out) == ENGINE_OK);
  REQUIRE(out.dtype == ENGINE_DTYPE_FLOAT32);
  REQUIRE(out.rank == 2);
  const auto* p = static_cast<const float*>(out.data);
  return std::vector<float>(p, p + out.shape[0] * out.shape[1]);
}

TEST_CASE("C API: describes the model and runs like the C++ API") {
  CHECK(std::string(engine_version()) == "0.1");
  engine_model* m = load(ENGINE_FP32);
  REQUIRE(engine_model_input_count(m) == 1);
  REQUIRE(engine_model_output_count(m) == 1);
  const char* name = nullptr;
  engine_dtype dt = ENGINE_DTYPE_UNDEFINED;
  const int64_t* shape = nullptr;
  size_t rank = 0;
  REQUIRE(engine_model_input(m, 0, &name, &dt, &shape, &rank) == ENGINE_OK);
  CHECK(std::string(name) == "input");
  CHECK(dt == ENGINE_DTYPE_FLOAT32);
  REQUIRE(rank == 4);
  CHECK(shape[0] == -1);  // dynamic batch
  CHECK(shape[1] == 1);
  CHECK(engine_model_output(m, 3, &name, &dt, &shape, &rank) == ENGINE_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(engine_last_error()).find("out of range") != std::string::npos);

  engine_session* s = nullptr;
  REQUIRE(engine_session_create(m, &s) == ENGINE_OK);
  const Tensor x = random_tensor({3, 1, 28, 28}, 5);
  const Tensor copy = x.clone();
  const std::vector<float> got = run_once(s, x);
  CHECK(std::memcmp(x.raw(), copy.raw(), x.nbytes()) == 0);  // the input is only read
  const Tensor want = Model::load(kDemo).run({x})[0];
  REQUIRE(got.size() == size_t(want.numel()));
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want.data<float>()[i]));
  engine_session_free(s);
  engine_model_free(m);
}

TEST_CASE("C API: errors are statuses with messages, never exceptions or crashes") {
  engine_model* m = nullptr;
  CHECK(engine_model_load("/no/such/model.onnx", nullptr, &m) == ENGINE_ERROR_LOAD);
  CHECK(m == nullptr);
  CHECK(std::string(engine_last_error()).find("/no/such/model.onnx") != std::string::npos);
  const char junk[] = "not an onnx model";
  CHECK(engine_model_load_memory(junk, sizeof junk, nullptr, &m) == ENGINE_ERROR_LOAD);
  CHECK(engine_model_load(nullptr, nullptr, &m) == ENGINE_ERROR_INVALID_ARGUMENT);
  engine_options o;
  engine_options_init(&o);
  o.precision = ENGINE_INT8;  // FP32 model, no stats file
  CHECK(engine_model_load(kDemo.c_str(), &o, &m) == ENGINE_ERROR_LOAD);
  CHECK(std::string(engine_last_error()).find("stats_file") != std::string::npos);

  m = load(ENGINE_FP32);
  engine_session* s = nullptr;
  REQUIRE(engine_session_create(m, &s) == ENGINE_OK);
  engine_tensor out{};
  CHECK(engine_session_output(s, "logits", &out) == ENGINE_ERROR_INVALID_ARGUMENT);  // no run
  const Tensor x = random_tensor({2, 1, 28, 28}, 6);
  const int64_t bad_shape[] = {2, 3, 28, 28};
  const int64_t shape[] = {2, 1, 28, 28};
  const char* good = "input";
  const char* wrong = "image";
  struct Case {
    const char* name;
    engine_tensor t;
    const char* message;
  };
  const Case cases[] = {
      {wrong, {ENGINE_DTYPE_FLOAT32, shape, 4, x.raw()}, "no input named 'image'"},
      {good, {ENGINE_DTYPE_FLOAT32, bad_shape, 4, x.raw()}, "shape [2,3,28,28]"},
      {good, {ENGINE_DTYPE_FLOAT32, shape, 3, x.raw()}, "the model expects"},
      {good, {ENGINE_DTYPE_UINT8, shape, 4, x.raw()}, "dtype uint8"},
      {good, {ENGINE_DTYPE_FLOAT32, shape, 4, nullptr}, "data is NULL"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    CHECK(engine_session_run(s, 1, &c.name, &c.t) == ENGINE_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(engine_last_error()).find(c.message) != std::string::npos);
  }
  CHECK(engine_session_run(s, 0, nullptr, nullptr) == ENGINE_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(engine_last_error()).find("'input' is missing") != std::string::npos);
  CHECK(engine_session_output(s, "nope", &out) == ENGINE_ERROR_INVALID_ARGUMENT);
  engine_session_free(s);
  engine_model_free(m);
}

TEST_CASE("C API: 8 threads, one shared model, own sessions: the same bits as a lone run") {
  const std::string stats = demo_stats_file();
  for (engine_precision p : {ENGINE_FP32, ENGINE_INT8}) {
    CAPTURE(int(p));
    engine_model* m = load(p, stats);
    std::vector<Tensor> xs;
    std::vector<std::vector<float>> want;
    engine_session* lone = nullptr;
    REQUIRE(engine_session_create(m, &lone) == ENGINE_OK);
    for (int i = 0; i < 4; ++i) {
      xs.push_back(random_tensor({int64_t(1 + i), 1, 28, 28}, 70 + uint64_t(i)));
      want.push_back(run_once(lone, xs.back()));
    }
    engine_session_free(lone);
    constexpr int kThreads = 8, kRuns = 200;
    std::vector<int> mismatches(kThreads, 0), failures(kThreads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t)
      pool.emplace_back([&, t] {
        engine_session* s = nullptr;
        if (engine_session_create(m, &s) != ENGINE_OK) {
          failures[size_t(t)]++;
          return;
        }
        for (int r = 0; r < kRuns; ++r) {
          const size_t k = size_t((t + r) % 4);
          const Tensor& x = xs[k];
          engine_tensor in{ENGINE_DTYPE_FLOAT32, x.shape().data(), 4, x.raw()};
          const char* name = "input";
          engine_tensor out{};
          if (engine_session_run(s, 1, &name, &in) != ENGINE_OK ||
              engine_session_output(s, "logits", &out) != ENGINE_OK) {
            failures[size_t(t)]++;
            continue;
          }
          mismatches[size_t(t)] +=
              std::memcmp(out.data, want[k].data(), want[k].size() * sizeof(float)) != 0;
        }
        engine_session_free(s);
      });
    for (auto& th : pool) th.join();
    for (int t = 0; t < kThreads; ++t) {
      CHECK(failures[size_t(t)] == 0);
      CHECK(mismatches[size_t(t)] == 0);
    }
    engine_model_free(m);
  }
  std::filesystem::remove(stats);
}

TEST_CASE("C++ API over the C API: RAII, exceptions with status, sessions keep the model") {
  CHECK_THROWS_WITH_AS(api::Model::load("/no/such/model.onnx"),
                       doctest::Contains("/no/such/model.onnx"), api::Error);
  try {
    api::Model::load("/no/such/model.onnx");
  } catch (const api::Error& e) {
    CHECK(e.status() == ENGINE_ERROR_LOAD);
  }
  std::optional<api::Session> s;
  std::vector<api::TensorInfo> ins;
  {
    const api::Model m = api::Model::load(kDemo);
    ins = m.inputs();
    s.emplace(m.session());
  }  // the model handle is gone; the session still holds it
  REQUIRE(ins.size() == 1);
  CHECK(ins[0].name == "input");
  CHECK(ins[0].shape == std::vector<int64_t>{-1, 1, 28, 28});
  const Tensor x = random_tensor({2, 1, 28, 28}, 8);
  s->run({{"input", {2, 1, 28, 28}, x.raw()}});
  const api::View y = s->output("logits");
  CHECK(y.shape == std::vector<int64_t>{2, 10});
  const Tensor want = Model::load(kDemo).run({x})[0];
  for (int64_t i = 0; i < y.size(); ++i)
    CHECK(y.floats()[i] == doctest::Approx(want.data<float>()[i]));
  CHECK_THROWS_AS(s->run({{"input", {2, 3, 28, 28}, x.raw()}}), api::Error);
  CHECK_THROWS_AS(s->output("nope"), api::Error);
}

}  // namespace
}  // namespace engine::test
