// libFuzzer target: bytes -> ONNX loader -> passes -> shape inference and kernel preparation at
// batch 1 (what `engine inspect` and the first run do). Engine errors are the expected outcome
// for bad input; anything else (a crash, a sanitizer report, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    engine::ModelOptions o;
    o.threads = 1;
    o.load.max_nodes = 4096;
    const engine::Model m =
        engine::Model::load_from_memory(std::string(reinterpret_cast<const char*>(data), size), o);
    std::vector<engine::Dims> shapes = m.concrete_input_shapes(1);
    // Keep inference bounded: skip inputs that would be large.
    for (const auto& s : shapes) {
      int64_t n = 1;
      for (int64_t d : s) {
        if (d > 4096) return 0;
        n *= std::max<int64_t>(d, 1);
        if (n > (int64_t(1) << 22)) return 0;
      }
    }
    m.plan(shapes);
  } catch (const engine::Error&) {
  }
  return 0;
}
