// libFuzzer target for the file readers (.npy, IDX, TensorProto, images, stats JSON, layer
// config JSON / YAML): the first byte picks the reader, the rest is the file
// (written to a private temp file for the path-based readers). Engine errors are expected;
// crashes, sanitizer reports and other exceptions are findings.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "frontend/idx.h"
#include "frontend/image.h"
#include "frontend/npy.h"
#include "frontend/tensor_proto.h"
#include "quant/calibrate.h"
#include "quant/config.h"

namespace {

std::string temp_file(const char* ext, const uint8_t* data, size_t size) {
  const std::string p = "/tmp/engine_fuzz_" + std::to_string(::getpid()) + ext;
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 7;
  ++data;
  --size;
  try {
    switch (kind) {
      case 0:
        engine::read_npy(temp_file(".npy", data, size));
        break;
      case 1:
        engine::read_idx(temp_file(".idx", data, size));
        break;
      case 2:
        engine::read_tensor_pb(temp_file(".pb", data, size));
        break;
      case 3: {
        engine::ImageLimits lim;
        lim.max_width = lim.max_height = 2048;
        engine::decode_image(data, size, "fuzz", lim);
        break;
      }
      case 4: {
        const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
        if (!j.is_discarded()) engine::quant::stats_from_json(j, "fuzz");
        break;
      }
      case 5: {
        engine::quant::QuantConfig c;
        engine::quant::apply_config_json(std::string(reinterpret_cast<const char*>(data), size), c,
                                         "fuzz");
        break;
      }
      case 6: {
        engine::quant::QuantConfig c;
        engine::quant::load_config_file(temp_file(".yaml", data, size), c);
        break;
      }
    }
  } catch (const engine::Error&) {
  }
  return 0;
}
