// Runs the ONNX backend tests shipped by Debian's libonnx-testdata: every test whose operators are
// all supported must match the shipped outputs (float: rtol 1e-3, atol 1e-4; others exact).
// Tests whose operators are not all supported are counted as skipped; tests of supported ops that
// the engine rejects on purpose are listed with a reason in tests/onnx_node_skips.txt.
//
// usage: onnx_node_tests [--data DIR] [--skips FILE] [--filter SUBSTR] [--backend B] [--verbose]
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "engine/engine.h"
#include "frontend/tensor_proto.h"

namespace fs = std::filesystem;
using namespace engine;

namespace {

std::map<std::string, std::string> read_skips(const std::string& path) {
  std::map<std::string, std::string> skips;
  std::ifstream f(path);
  if (!f) fail(path, ": cannot read the skip list");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.find_first_of(" \t");
    std::string name = line.substr(0, sp);
    std::string reason =
        sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", sp));
    if (reason.empty()) fail(path, ": entry '", name, "' has no reason");
    skips[name] = reason;
  }
  return skips;
}

// Returns "" if equal, else a description of the first mismatch.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return str_cat("shape ", dims_str(got.shape()), " != expected ", dims_str(want.shape()));
  const bool fl = dtype_is_float(want.dtype());
  if (got.dtype() != want.dtype())
    return str_cat("type ", dtype_name(got.dtype()), " != expected ", dtype_name(want.dtype()));
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = got.get_as_double(i), w = want.get_as_double(i);
    if (fl) {
      if (std::isnan(w) && std::isnan(g)) continue;
      if (std::isinf(w) && g == w) continue;
      if (!(std::abs(g - w) <= 1e-4 + 1e-3 * std::abs(w)))
        return str_cat("element ", i, ": ", g, " != expected ", w);
    } else if (got.get_as_int(i) != want.get_as_int(i)) {
      return str_cat("element ", i, ": ", got.get_as_int(i), " != expected ", want.get_as_int(i));
    }
  }
  return "";
}

std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> v;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) v.push_back(e.path());
  std::sort(v.begin(), v.end(), [](const fs::path& a, const fs::path& b) {
    auto num = [](const fs::path& p) {
      std::string s = p.stem().string();
      return std::stoi(s.substr(s.find('_') + 1));
    };
    return num(a) < num(b);
  });
  return v;
}

// Runs one test folder; returns "" on success, else the failure message.
std::string g_backend = "onednn";

std::string run_test(const fs::path& dir) {
  ModelOptions opt;
  opt.backend = g_backend;
  Model m = Model::load((dir / "model.onnx").string(), opt);
  int sets = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    if (!e.is_directory() || e.path().filename().string().rfind("test_data_set", 0) != 0) continue;
    ++sets;
    std::vector<Tensor> inputs;
    for (auto& p : sorted_files(e.path(), "input_")) inputs.push_back(read_tensor_pb(p.string()));
    std::vector<Tensor> outs = m.run(inputs);
    auto wants = sorted_files(e.path(), "output_");
    if (wants.size() != outs.size())
      return str_cat(e.path().filename().string(), ": ", outs.size(), " outputs, expected ",
                     wants.size());
    for (size_t i = 0; i < wants.size(); ++i) {
      std::string d = compare(outs[i], read_tensor_pb(wants[i].string()));
      if (!d.empty())
        return str_cat(e.path().filename().string(), " output ", i, " ('", m.outputs()[i].name,
                       "'): ", d);
    }
  }
  if (sets == 0) return "no test_data_set folders";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/libonnx-testdata/data", skips_path, filter;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc)
      data = argv[++i];
    else if (a == "--backend" && i + 1 < argc)
      g_backend = argv[++i];
    else if (a == "--skips" && i + 1 < argc)
      skips_path = argv[++i];
    else if (a == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (a == "--verbose")
      verbose = true;
    else {
      std::cerr << "usage: onnx_node_tests [--data DIR] [--skips FILE] [--filter S] [--backend "
                   "onednn|reference] [--verbose]\n";
      return 2;
    }
  }
  if (!fs::exists(data)) {
    std::cerr << data << ": ONNX test data not found (apt-get install libonnx-testdata)\n";
    return 1;
  }
  std::map<std::string, std::string> skips;
  if (!skips_path.empty()) skips = read_skips(skips_path);
  int passed = 0, failed = 0, unsupported = 0, listed = 0;
  std::map<std::string, int> missing_ops;
  std::set<std::string> seen;
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path sdir = fs::path(data) / suite;
    if (!fs::exists(sdir)) continue;
    std::vector<fs::path> tests;
    for (auto& e : fs::directory_iterator(sdir))
      if (fs::exists(e.path() / "model.onnx")) tests.push_back(e.path());
    std::sort(tests.begin(), tests.end());
    for (const fs::path& t : tests) {
      const std::string name = t.filename().string();
      if (!filter.empty() && name.find(filter) == std::string::npos) continue;
      seen.insert(name);
      std::string err;
      try {
        err = run_test(t);
      } catch (const std::exception& e) {
        err = e.what();
      }
      if (err.find("unsupported operator") != std::string::npos) {
        ++unsupported;
        auto p = err.find(":\n  ");
        std::string ops = p == std::string::npos ? err : err.substr(p + 4);
        missing_ops[ops.substr(0, ops.find(' '))]++;
        if (verbose) std::cout << "SKIP " << suite << "/" << name << ": unsupported\n";
        continue;
      }
      auto sk = skips.find(name);
      if (sk != skips.end()) {
        if (err.empty()) {
          std::cout << "NOTE " << name << " passes now: remove it from the skip list\n";
          ++passed;
        } else {
          ++listed;
          if (verbose) std::cout << "SKIP " << name << ": " << sk->second << "\n";
        }
        continue;
      }
      if (err.empty()) {
        ++passed;
        if (verbose) std::cout << "PASS " << suite << "/" << name << "\n";
      } else {
        ++failed;
        std::cout << "FAIL " << suite << "/" << name << ": " << err << "\n";
      }
    }
  }
  for (auto& [name, reason] : skips)
    if (!seen.count(name) && filter.empty())
      std::cout << "NOTE skip-list entry '" << name << "' matches no test\n";
  if (verbose) {
    std::cout << "unsupported operators (first one per skipped test):\n";
    for (auto& [op, n] : missing_ops) std::cout << "  " << op << " " << n << "\n";
  }
  std::cout << "onnx node tests: " << passed << " passed, " << failed << " failed, " << unsupported
            << " skipped (unsupported ops), " << listed << " skipped (listed in the skip file)\n";
  return failed == 0 ? 0 : 1;
}
