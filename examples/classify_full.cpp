// Classifies one image file in INT8 with the engine's full C++ API (engine/engine.h, static
// library engine::engine_static: quantization, calibration, inspection), quantized from a stats
// file (written earlier by `engine quantize --stats-out stats.json ...`).
//
//   classify_full MODEL.onnx STATS.json IMAGE [scale mean std]
//   e.g. classify_full fashion_resnet8.onnx stats.json 7_sneaker.png 1/255 0.286 0.353
#include <engine/engine.h>
#include <frontend/image.h>
#include <frontend/preprocess.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    std::cerr << "usage: " << argv[0] << " MODEL.onnx STATS.json IMAGE [scale mean std]\n";
    return 2;
  }
  try {
    const engine::Model fp32 = engine::Model::load(argv[1]);
    std::ifstream f(argv[2]);
    if (!f) throw engine::Error(std::string(argv[2]) + ": cannot open");
    std::stringstream text;
    text << f.rdbuf();
    std::map<std::string, engine::quant::Range> overrides;
    const auto stats =
        engine::quant::stats_from_json(nlohmann::json::parse(text.str()), argv[2], &overrides);
    const engine::Model int8 = fp32.quantize(engine::quant::QuantConfig{}, stats, overrides);

    engine::PreprocessOptions pre;
    pre.channels = int(int8.inputs().at(0).shape.at(1));
    if (argc == 7) {
      engine::parse_scale(argv[4], pre);
      pre.mean = engine::parse_float_list(argv[5], "mean");
      pre.std = engine::parse_float_list(argv[6], "std");
    }
    engine::Tensor x = engine::preprocess_image(engine::load_image(argv[3]), pre);
    engine::Dims d = x.shape();
    d.insert(d.begin(), 1);  // batch of one
    const std::vector<engine::Tensor> out = int8.run({x.reshaped(d)});
    const float* p = out.at(0).data<float>();
    const int64_t n = out[0].numel();
    const int64_t best = std::max_element(p, p + n) - p;
    std::cout << "class " << best << " score " << p[best] << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
