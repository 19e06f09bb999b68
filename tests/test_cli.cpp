// The `engine` executable on good and bad input: exit codes and messages. Suite "cli".
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "core/tensor.h"
#include "frontend/image.h"
#include "frontend/npy.h"
#include "model_builder.h"

using namespace engine;
using engine::test::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = ENGINE_SOURCE_DIR;
const std::string kDemo = kSrc + "/demo/fashion_resnet8.onnx";
const std::string kDemoFlags = " --scale 1/255 --mean 0.286 --std 0.353 ";

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("engine_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& bytes) const {
    const std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("run classifies every demo image as its own class") {
    for (const auto& e : fs::directory_iterator(kSrc + "/demo/images")) {
      const std::string name = e.path().filename().string();  // "<class>_<name>.png"
      auto r = run_cli("run " + kDemo + " -i " + e.path().string() + kDemoFlags + "--topk 1");
      CAPTURE(r.out);
      REQUIRE(r.exit_code == 0);
      CHECK(r.out.find("1. class " + name.substr(0, name.find('_')) + " ") != std::string::npos);
    }
  }

  TEST_CASE("run writes outputs atomically and prints help") {
    TempDir t;
    const std::string out = (t.path / "logits.npy").string();
    auto r = run_cli("run " + kDemo + " --random --batch 3 -o " + out);
    REQUIRE(r.exit_code == 0);
    Tensor y = read_npy(out);
    CHECK(y.shape() == Dims{3, 10});
    for (const char* cmd : {"run", "eval", "inspect"}) {
      auto h = run_cli(std::string(cmd) + " --help");
      CHECK(h.exit_code == 0);
      CHECK(h.out.find("--threads") != std::string::npos);
    }
    CHECK(run_cli("").exit_code == 2);
    CHECK(run_cli("run").exit_code == 2);
    CHECK(run_cli("run " + kDemo + " --no-such-flag").exit_code == 2);
  }

  TEST_CASE("inspect shows shapes, parameters, FLOPs and planned memory") {
    auto r = run_cli("inspect " + kDemo + " --batch 4");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("logits [4,10] float32") != std::string::npos);
    CHECK(r.out.find("parameters: ") != std::string::npos);
    CHECK(r.out.find("FLOPs") != std::string::npos);
    CHECK(r.out.find("planned activation memory (batch 4)") != std::string::npos);
    auto p = run_cli("inspect " + kDemo + " --passes");
    CHECK(p.out.find("fold-constants") != std::string::npos);
    p = run_cli("inspect --passes");  // no model needed to list them
    CHECK(p.exit_code == 0);
    CHECK(p.out.find("fuse-qconv-qadd") != std::string::npos);
    p = run_cli("inspect");
    CHECK(p.exit_code == 1);
    CHECK(p.out.find("a model file is required") != std::string::npos);
  }

  TEST_CASE("bad inputs: clean errors, exit code 1, no crash") {
    TempDir t;
    struct Case {
      std::string args, message;
    };
    const std::string model_bytes = slurp(kDemo);
    const std::string png = slurp(kSrc + "/demo/images/1_trouser.png");
    std::string garbled = png;
    for (size_t i = 40; i < garbled.size(); ++i) garbled[i] = char(i * 7);
    const std::string truncated_model = t.file("truncated.onnx", model_bytes.substr(0, 1000));
    const std::string corrupt_png = t.file("corrupt.png", garbled);
    const std::string fake_jpeg = t.file("fake.jpg", "\xFF\xD8\xFF\xE0 this is not a jpeg");
    const std::string wrong_npy = (t.path / "wrong.npy").string();
    write_npy(wrong_npy, Tensor(DType::F32, {1, 28}));
    // A valid .npy header declaring 10^15 floats in a tiny file.
    std::string header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    const std::string huge_npy =
        t.file("huge.npy", std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) +
                               char(header.size() >> 8) + header);
    engine::test::ModelBuilder mb;
    mb.input("x", {1, 2});
    mb.node("Relu", {"x"}, {"a"});
    mb.node("NotAnOp", {"a"}, {"y"}, "mystery");
    mb.output("y");
    const std::string unsupported = t.file("unsupported.onnx", mb.bytes());
    const Case cases[] = {
        {"run " + t.path.string() + "/missing.onnx --random", "missing.onnx: no such file"},
        {"run " + truncated_model + " --random", "not a valid ONNX model"},
        {"run " + unsupported + " --random", "NotAnOp (1 node, first 'mystery')"},
        {"run " + kDemo + " -i " + corrupt_png + kDemoFlags, "corrupt.png"},
        {"run " + kDemo + " -i " + fake_jpeg + kDemoFlags, "fake.jpg"},
        {"run " + kDemo + " -i " + t.path.string() + "/nothere.png", "nothere.png: no such file"},
        {"run " + kDemo + " -i " + wrong_npy, "must have shape [?,1,28,28], got [1,28]"},
        {"run " + kDemo + " -i " + huge_npy, "huge.npy"},
        {"eval " + kDemo + " --data " + t.path.string() + "/nolist.txt", "nolist.txt"},
    };
    for (const Case& c : cases) {
      auto r = run_cli(c.args);
      CAPTURE(c.args);
      CAPTURE(r.out);
      CHECK(r.exit_code == 1);
      CHECK(r.out.find("error: ") != std::string::npos);
      CHECK(r.out.find(c.message) != std::string::npos);
    }
  }

  TEST_CASE("inspect --kernels prints the kernel selection; ENGINE_ISA lowers the GEMM path") {
    auto r = run_cli("inspect " + kDemo + " --kernels");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("integer GEMM") != std::string::npos);
    CHECK(r.out.find("oneDNN 2.6") != std::string::npos);
    ::setenv("ENGINE_ISA", "reference", 1);  // inherited by the child process
    r = run_cli("inspect " + kDemo + " --kernels");
    ::unsetenv("ENGINE_ISA");
    CHECK(r.exit_code == 0);
    // The row's value (after the label's padding) names the forced path.
    const size_t row = r.out.find("integer GEMM (QConv, QGemm, ...)");
    REQUIRE(row != std::string::npos);
    const std::string line = r.out.substr(row, r.out.find('\n', row) - row);
    CHECK(line.find("  reference") != std::string::npos);
    CHECK(r.out.find("reference loops") != std::string::npos);
    ::setenv("ENGINE_ISA", "avx2", 1);
    r = run_cli("inspect " + kDemo + " --kernels");
    ::unsetenv("ENGINE_ISA");
    CHECK(r.out.find("no VNNI: u8 / s8 widened to int16") != std::string::npos);
    CHECK(r.out.find("off: separate oneDNN convs") != std::string::npos);  // fuse-mbconv off
    CHECK(r.out.find("off: oneDNN with a sum post-op") != std::string::npos);
    CHECK(r.out.find("off: oneDNN conv and pool") != std::string::npos);  // fuse-stem off
  }

  TEST_CASE("eval scores tied logits as argmax does (lowest class index), not as hits") {
    // All-zero logits: every class ties, argmax says class 0. Ten demo images, one per class,
    // so top-1 must be exactly 10 % (counting ties as hits would give 100 %).
    test::ModelBuilder mb;
    mb.input("x", {-1, 1, 28, 28});
    mb.init("W", Tensor(DType::F32, {784, 10}));
    mb.node("Flatten", {"x"}, {"f"});
    mb.node("MatMul", {"f", "W"}, {"y"});
    mb.output("y");
    TempDir t;
    const std::string model = t.file("zeros.onnx", mb.bytes());
    std::string list;
    for (const auto& e : fs::directory_iterator(kSrc + "/demo/images")) {
      const std::string f = e.path().filename().string();  // "<class>_<name>.png"
      list += e.path().string() + " " + f.substr(0, f.find('_')) + "\n";
    }
    const std::string list_file = t.file("list.txt", list);
    const auto r = run_cli("eval " + model + " --data " + list_file + " --json", false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["images"] == 10);
    CHECK(j["correct"] == 1);
    CHECK(j["top1"].get<double>() == doctest::Approx(10.0));
    CHECK(j["top5"].get<double>() == doctest::Approx(50.0));  // classes 0..4 rank in the top 5
  }

  TEST_CASE("run --int8 classifies every demo image as its own class") {
    const std::string calib = " --int8 --calib " + kSrc + "/demo/images";
    for (const auto& e : fs::directory_iterator(kSrc + "/demo/images")) {
      const std::string name = e.path().filename().string();
      auto r =
          run_cli("run " + kDemo + " -i " + e.path().string() + kDemoFlags + calib + " --topk 1");
      CAPTURE(r.out);
      REQUIRE(r.exit_code == 0);
      CHECK(r.out.find("quantized 12/12 nodes") != std::string::npos);
      CHECK(r.out.find("1. class " + name.substr(0, name.find('_')) + " ") != std::string::npos);
    }
  }

  TEST_CASE("debug: per-layer table, JSON, dumps, --max-drop config; bad layer names") {
    TempDir t;
    std::string list;
    for (const auto& e : fs::directory_iterator(kSrc + "/demo/images")) {
      const std::string f = e.path().filename().string();  // "<class>_<name>.png"
      list += e.path().string() + " " + f.substr(0, f.find('_')) + "\n";
    }
    const std::string data = t.file("list.txt", list);
    const std::string base = "debug " + kDemo + kDemoFlags + "--data " + data;
    auto r = run_cli(base + " --calib-noise 4 --json", false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["samples"] == 10);
    CHECK(j["labeled"] == 10);
    CHECK(j["fp32_top1"].get<double>() == doctest::Approx(100.0));  // one image per class
    // 8 convs, 1 Gemm, the pool and flatten of fashion_resnet8 after fusion.
    CHECK(j["layers"].size() >= 9);
    CHECK(j["ranked_isolated"].size() >= 9);
    for (const auto& l : j["layers"]) {
      CAPTURE(l["node"]);
      const double sqnr = l["accumulated"]["sqnr_db"];
      CHECK(sqnr > 10);  // 8-bit layers; noise calibration is coarse but not garbage
      CHECK(l["accumulated"]["cosine"].get<double>() > 0.9);
    }
    // Text table; calibration on --data by default; --dump for one layer.
    const std::string dump = (t.path / "dump").string();
    r = run_cli(base + " --dump " + dump + " --layers /l1/c1/Conv --no-isolated");
    CAPTURE(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("calibrating on the first 256 items of --data") != std::string::npos);
    CHECK(r.out.find("accumulated (whole graph INT8)") != std::string::npos);
    CHECK(r.out.find("isolated (one layer") == std::string::npos);
    CHECK(fs::exists(dump + "/_l1_Relu_output_0.fp32.npy"));
    CHECK(fs::exists(dump + "/_l1_Relu_output_0.int8.npy"));
    // --max-drop 0 with FP32 at 100 %: the config file is written and parses as a config.
    const std::string cfg = (t.path / "keep.yaml").string();
    r = run_cli(base + " --max-drop 0 --config-out " + cfg);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("wrote " + cfg) != std::string::npos);
    CHECK(run_cli("quantize " + kDemo + " --calib-noise 2 --config " + cfg + " -o " +
                  (t.path / "q.onnx").string())
              .exit_code == 0);
    // Errors: unknown layer, overwriting the model, an already-quantized model.
    r = run_cli(base + " --dump " + dump + " --layers no_such_layer --no-isolated");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("'no_such_layer' is not a quantized layer") != std::string::npos);
    r = run_cli(base + " --max-drop 1 --config-out " + kDemo);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("would overwrite an input") != std::string::npos);
    CHECK(run_cli(base + " --max-drop 1 --no-isolated").exit_code == 1);
  }

  TEST_CASE("debug --report: a self-contained HTML page that renders in headless Chromium") {
    TempDir t;
    std::string list;
    for (const auto& e : fs::directory_iterator(kSrc + "/demo/images")) {
      const std::string f = e.path().filename().string();
      list += e.path().string() + " " + f.substr(0, f.find('_')) + "\n";
    }
    const std::string html = (t.path / "report.html").string();
    auto r = run_cli("debug " + kDemo + kDemoFlags + "--data " + t.file("list.txt", list) +
                     " --calib-noise 4 --report " + html);
    CAPTURE(r.out);
    REQUIRE(r.exit_code == 0);
    const std::string page = slurp(html);
    CHECK(page.find("<svg") != std::string::npos);
    CHECK(page.find("/l1/c1/Conv") != std::string::npos);
    // Self-contained: nothing fetched from anywhere, no scripts.
    CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));
    CHECK(page.find("https://") == std::string::npos);
    CHECK(page.find("<script") == std::string::npos);
    // Render it (scripts/install-deps.sh installs chromium) and look at the pixels: the page is
    // not blank and the accumulated-mode bars (#3b6fb6) are drawn.
    REQUIRE_MESSAGE(std::system("command -v chromium >/dev/null") == 0,
                    "chromium is not installed (scripts/install-deps.sh installs it)");
    const std::string png = (t.path / "report.png").string();
    const std::string cmd = "cd " + t.path.string() +
                            " && timeout 120 chromium --headless --no-sandbox --disable-gpu "
                            "--screenshot=" +
                            png + " --window-size=1200,1600 file://" + html + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const Tensor img = load_image(png);  // uint8 [H, W, C]
    REQUIRE(img.rank() == 3);
    const int64_t n = img.dim(0) * img.dim(1), c = img.dim(2);
    int64_t non_white = 0, bars = 0;
    const uint8_t* p = img.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* px = p + i * c;
      non_white += px[0] < 200 || px[1] < 200 || px[2] < 200;
      bars +=
          std::abs(px[0] - 0x3b) < 12 && std::abs(px[1] - 0x6f) < 12 && std::abs(px[2] - 0xb6) < 12;
    }
    CHECK(non_white > n / 100);
    CHECK(bars > 2000);
  }

  TEST_CASE("hostile models (tests/hostile, made by make_hostile_models): clean errors, exit 1") {
    int n = 0;
    for (const auto& e : fs::directory_iterator(kSrc + "/tests/hostile")) {
      if (e.path().extension() != ".onnx") continue;
      ++n;
      const std::string f = e.path().string();
      for (const std::string& cmd : {"inspect " + f, "run " + f + " --random"}) {
        CAPTURE(cmd);
        const auto r = run_cli(cmd);
        CAPTURE(r.out);
        // A 2^50-element input declared in 88 bytes: inspecting shapes is fine, running is not.
        if (cmd.starts_with("inspect") && f.ends_with("huge_input_shape.onnx")) {
          CHECK(r.exit_code == 0);
          continue;
        }
        CHECK(r.exit_code == 1);  // not 0 (silent garbage), not 128+ (a crash)
        CHECK(r.out.find("error: ") != std::string::npos);
        // The message names the file, or the node / input at fault ('name').
        CHECK((r.out.find(e.path().filename().string()) != std::string::npos ||
               r.out.find("'") != std::string::npos));
        CHECK(r.out.size() < 4000);  // a message, not a dump
        CHECK(r.out.find("AddressSanitizer") == std::string::npos);
        CHECK(r.out.find("runtime error") == std::string::npos);  // UBSan
      }
    }
    CHECK(n >= 15);
  }

  TEST_CASE("--model-limit lowers and raises the model-file limits") {
    const std::string demo = kSrc + "/demo/fashion_resnet8.onnx";
    auto r = run_cli("inspect " + demo + " --model-limit nodes=5");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("fashion_resnet8.onnx: ") != std::string::npos);
    CHECK(r.out.find("nodes exceed the limit of 5") != std::string::npos);
    r = run_cli("inspect " + demo + " --model-limit depth=3");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("nodes deep, more than the limit of 3") != std::string::npos);
    r = run_cli("inspect " + demo + " --model-limit file-bytes=1000");
    CHECK(r.exit_code == 1);
    r = run_cli("inspect " + demo + " --model-limit nodes=100000 --model-limit depth=1000");
    CHECK(r.exit_code == 0);
    r = run_cli("inspect " + demo + " --model-limit width=3");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("KEY one of file-bytes, nodes, depth") != std::string::npos);
    r = run_cli("inspect " + demo + " --model-limit nodes=-3");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("--model-limit nodes: '-3' is not an integer") != std::string::npos);
  }

  TEST_CASE("quantize saves a model that runs in INT8 without calibration; stats files") {
    TempDir t;
    const std::string q = (t.path / "demo.int8.onnx").string();
    const std::string stats = (t.path / "stats.json").string();
    const std::string img = kSrc + "/demo/images/7_sneaker.png";
    auto r = run_cli("quantize " + kDemo + kDemoFlags + "--calib " + kSrc +
                     "/demo/images --observer percentile --stats-out " + stats + " -o " + q);
    CAPTURE(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(fs::file_size(q) < fs::file_size(kDemo) / 2);  // int8 weights
    const std::string st = slurp(stats);
    CHECK(st.find("engine-calibration-stats") != std::string::npos);
    CHECK(st.find("\"observer\": \"percentile\"") != std::string::npos);
    // The saved model is INT8 already; running it needs no calibration flags.
    auto saved = run_cli("run " + q + " -i " + img + kDemoFlags + "--topk 1 -o " +
                         (t.path / "a.npy").string());
    CAPTURE(saved.out);
    REQUIRE(saved.exit_code == 0);
    CHECK(saved.out.find("1. class 7 ") != std::string::npos);
    // Re-quantizing from the stats file gives the same outputs as the saved model.
    auto again = run_cli("run " + kDemo + " -i " + img + kDemoFlags +
                         "--int8 --observer percentile --stats-in " + stats + " -o " +
                         (t.path / "b.npy").string());
    REQUIRE(again.exit_code == 0);
    CHECK(slurp((t.path / "a.npy").string()) == slurp((t.path / "b.npy").string()));
    // The native file (from the same stats) runs to the same bits, and so does the native
    // file made from the saved ONNX model.
    const std::string eng = (t.path / "demo.eng").string(), eng2 = (t.path / "again.eng").string();
    r = run_cli("quantize " + kDemo + kDemoFlags + "--observer percentile --stats-in " + stats +
                " --format native -o " + eng);
    CAPTURE(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(slurp(eng).rfind("ENGINEIR", 0) == 0);
    REQUIRE(run_cli("quantize " + q + " --format native -o " + eng2).exit_code == 0);
    for (const std::string& f : {eng, eng2}) {
      auto native = run_cli("run " + f + " -i " + img + kDemoFlags + "--topk 1 -o " +
                            (t.path / "c.npy").string());
      CAPTURE(native.out);
      REQUIRE(native.exit_code == 0);
      CHECK(slurp((t.path / "a.npy").string()) == slurp((t.path / "c.npy").string()));
    }
    // `compile`: FP32 as a native file runs like the ONNX model; with --int8 like --int8 runs.
    const std::string fp = (t.path / "fp.eng").string(), i8 = (t.path / "i8.eng").string();
    REQUIRE(run_cli("compile " + kDemo + " -o " + fp).exit_code == 0);
    REQUIRE(run_cli("compile " + kDemo + kDemoFlags + "--int8 --observer percentile --stats-in " +
                    stats + " -o " + i8)
                .exit_code == 0);
    auto out_of = [&](const std::string& model, const std::string& extra) {
      const std::string o = (t.path / "o.npy").string();
      const auto res = run_cli("run " + model + " -i " + img + kDemoFlags + extra + " -o " + o);
      CAPTURE(res.out);
      CHECK(res.exit_code == 0);
      return slurp(o);
    };
    CHECK(out_of(fp, "") == out_of(kDemo, ""));
    CHECK(out_of(i8, "") == slurp((t.path / "a.npy").string()));
    CHECK(out_of(fp, "") != out_of(i8, ""));
    CHECK(run_cli("compile " + kDemo + " -o " + kDemo).exit_code == 1);
    // Never overwrite the input.
    auto same = run_cli("quantize " + kDemo + " --calib-noise 2 -o " + kDemo);
    CHECK(same.exit_code == 1);
    CHECK(same.out.find("would overwrite the input model") != std::string::npos);
  }

  TEST_CASE("--int8 errors: missing calibration, bad config and stats files, unknown observer") {
    TempDir t;
    const std::string bad_cfg =
        t.file("layers.yaml", "layers:\n  - match: conv1\n    bits_w: 12\n");
    const std::string bad_json = t.file("layers.json", "{\"layers\": [");
    const std::string bad_stats = t.file("stats.json", "{\"format\": \"something-else\"}");
    struct Case {
      std::string args, message;
    };
    const std::string base = "run " + kDemo + " --random --int8 ";
    const Case cases[] = {
        {base, "--int8 needs calibration data"},
        {base + "--calib-noise 2 --config " + bad_cfg, "layers.yaml"},
        {base + "--calib-noise 2 --config " + bad_json, "not valid JSON"},
        {base + "--calib-noise 2 --config " + t.path.string() + "/none.yaml", "none.yaml"},
        {base + "--stats-in " + bad_stats, "not an engine calibration stats file"},
        {base + "--calib-noise 2 --observer nope", "nope"},
        {base + "--calib-noise 2 --quantize-from nosuchnode", "no node named 'nosuchnode'"},
        {base + "--calib " + t.path.string() + "/missing_dir", "missing_dir"},
    };
    for (const Case& c : cases) {
      auto r = run_cli(c.args);
      CAPTURE(c.args);
      CAPTURE(r.out);
      CHECK(r.exit_code == 1);
      CHECK(r.out.find(c.message) != std::string::npos);
    }
    CHECK(run_cli(base + "--calib-noise 2 --bits-w 9").exit_code == 2);
    CHECK(run_cli(base + "--calib-noise 2 --fuse some").exit_code == 2);
  }
}
