// `engine bench`: JSON fields and their invariants, precisions and ratios, --profile, --input,
// and bad arguments. Suite "cli". Timings are never compared with fixed numbers.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "engine/engine.h"
#include "frontend/npy.h"
#include "model_builder.h"

using namespace engine;
using engine::test::run_cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kDemo = std::string(ENGINE_SOURCE_DIR) + "/demo/fashion_resnet8.onnx";

struct BenchDir {
  fs::path path;
  BenchDir() {
    path = fs::temp_directory_path() / ("engine_cli_bench_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~BenchDir() { fs::remove_all(path); }
};

json bench_json(const std::string& args) {
  auto r = run_cli("bench " + args + " --json", /*with_stderr=*/false);
  CAPTURE(args);
  CAPTURE(r.out);
  REQUIRE(r.exit_code == 0);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

// The documented fields and the relations between them.
void check_result(const json& e, int64_t runs) {
  CAPTURE(e.dump());
  for (const char* k : {"batch", "precision", "threads", "median_ms", "p90_ms", "p99_ms",
                        "images_per_s", "peak_rss_mb"})
    REQUIRE(e.contains(k));
  CHECK(e["runs"].get<int64_t>() == runs);
  CHECK(e["threads"].get<int>() >= 1);
  const double med = e["median_ms"], p90 = e["p90_ms"], p99 = e["p99_ms"];
  CHECK(e["min_ms"].get<double>() > 0);
  CHECK(e["min_ms"].get<double>() <= med);
  CHECK(med <= p90);
  CHECK(p90 <= p99);
  CHECK(e["images_per_s"].get<double>() ==
        doctest::Approx(double(e["batch"].get<int64_t>()) * 1000.0 / med).epsilon(1e-9));
  CHECK(e["peak_rss_mb"].get<double>() > 1.0);  // the process holds at least the model
  CHECK(e["cpu_share"].get<double>() > 0);
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("bench --json: one result per batch size with the documented fields") {
    json j = bench_json(kDemo + " --batch 1,2 --iters 3 --threads 2");
    REQUIRE(j["results"].size() == 2);
    CHECK(j["threads"] == 2);
    CHECK(j["results"][0]["batch"] == 1);
    CHECK(j["results"][1]["batch"] == 2);
    for (const auto& e : j["results"]) {
      CHECK(e["precision"] == "fp32");
      CHECK(e["threads"] == 2);
      check_result(e, 3);
    }
    CHECK(j["ratios"].empty());
    // With --iters 1 every percentile is the single run.
    json one = bench_json(kDemo + " --iters 1 --warmup 0");
    REQUIRE(one["results"].size() == 1);
    const auto& e = one["results"][0];
    CHECK(e["batch"] == 1);
    CHECK(e["median_ms"] == e["p99_ms"]);
    CHECK(e["median_ms"] == e["min_ms"]);
  }

  TEST_CASE("bench --precision fp32,int8 times both and reports the ratio of medians") {
    json j = bench_json(kDemo + " --batch 1,2 --iters 2 --precision fp32,int8");
    REQUIRE(j["results"].size() == 4);
    std::map<std::pair<std::string, int64_t>, double> median;
    for (const auto& e : j["results"]) {
      check_result(e, 2);
      median[{e["precision"].get<std::string>(), e["batch"].get<int64_t>()}] = e["median_ms"];
    }
    REQUIRE(median.size() == 4);
    REQUIRE(j["ratios"].size() == 2);
    for (const auto& r : j["ratios"]) {
      CHECK(r["precision"] == "int8");
      CHECK(r["baseline"] == "fp32");
      const int64_t b = r["batch"];
      CHECK(r["speedup"].get<double>() ==
            doctest::Approx(median[{"fp32", b}] / median[{"int8", b}]).epsilon(1e-9));
    }
    // Without a calibration source, int8 says it calibrates on noise.
    auto t = run_cli("bench " + kDemo + " --precision int8 --iters 1");
    CAPTURE(t.out);
    CHECK(t.exit_code == 0);
    CHECK(t.out.find("8 Gaussian-noise inputs") != std::string::npos);
    CHECK(t.out.find("int8 ") != std::string::npos);
  }

  TEST_CASE("bench --profile lists every executed node, slowest first") {
    const Model m = Model::load(kDemo);  // the same default passes as the CLI (fuse all)
    const auto plan = m.plan(m.concrete_input_shapes(1));
    REQUIRE(plan->steps.size() >= 5);
    auto r = run_cli("bench " + kDemo + " --iters 2 --profile");
    CAPTURE(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("op type") != std::string::npos);
    for (int s : plan->steps) {
      const Node& n = m.graph().nodes[size_t(s)];
      CHECK_MESSAGE(r.out.find(n.op_type + " ") != std::string::npos, n.op_type);
      CHECK_MESSAGE(r.out.find(" " + n.name + " ") != std::string::npos, n.name);
    }
    json j = bench_json(kDemo + " --iters 2 --profile");
    const auto& prof = j["results"][0]["profile"];
    REQUIRE(prof.size() == plan->steps.size());
    double percent = 0;
    for (size_t k = 0; k < prof.size(); ++k) {
      percent += prof[k]["percent"].get<double>();
      if (k > 0) CHECK(prof[k]["ms"].get<double>() <= prof[k - 1]["ms"].get<double>());
    }
    CHECK(percent == doctest::Approx(100.0).epsilon(1e-6));
    json top = bench_json(kDemo + " --iters 1 --profile --profile-top 3");
    CHECK(top["results"][0]["profile"].size() == 3);
  }

  TEST_CASE("bench --input times the given tensor at its batch size") {
    BenchDir d;
    const std::string npy = (d.path / "x.npy").string();
    Tensor x(DType::F32, {3, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 7) - 3.0f;
    write_npy(npy, x);
    json j = bench_json(kDemo + " -i " + npy + " --iters 2");
    REQUIRE(j["results"].size() == 1);
    CHECK(j["results"][0]["batch"] == 3);
    auto r = run_cli("bench " + kDemo + " -i " + npy + " --batch 2 --iters 1");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("--input gives batch 3") != std::string::npos);
  }

  TEST_CASE("bench rejects bad batch sizes, precisions and fixed-batch mismatches") {
    for (const char* b : {"0", "x", "-2", "1,0", "2.5"}) {
      auto r = run_cli("bench " + kDemo + " --batch " + b + " --iters 1");
      CAPTURE(b);
      CAPTURE(r.out);
      CHECK(r.exit_code == 2);
      CHECK(r.out.find("is not a positive integer") != std::string::npos);
    }
    auto p = run_cli("bench " + kDemo + " --precision fp16 --iters 1");
    CHECK(p.exit_code == 2);
    CHECK(p.out.find("--precision") != std::string::npos);

    BenchDir d;
    engine::test::ModelBuilder mb;
    mb.input("x", {1, 4});
    mb.node("Relu", {"x"}, {"y"});
    mb.output("y");
    const std::string fixed = (d.path / "fixed.onnx").string();
    std::ofstream(fixed, std::ios::binary) << mb.bytes();
    auto f = run_cli("bench " + fixed + " --batch 1,4 --iters 1");
    CAPTURE(f.out);
    CHECK(f.exit_code == 1);
    CHECK(f.out.find("fixed batch of 1") != std::string::npos);
    CHECK(f.out.find("--batch 4 is not possible") != std::string::npos);
    json ok = bench_json(fixed + " --iters 1");  // its own batch by default
    CHECK(ok["results"][0]["batch"] == 1);
  }
}
