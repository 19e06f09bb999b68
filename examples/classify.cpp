// Classifies one image file in INT8 through the small C++ API (engine/engine.hpp over the shared
// library), quantized from a stats file (written by `engine quantize --stats-out stats.json`).
// The image is decoded with stb_image (Debian libstb-dev) and normalized per channel as
// (pixel * scale - mean) / std.
//
//   classify_cpp MODEL.onnx STATS.json IMAGE [scale mean std]
#include <engine/engine.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <vector>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    std::cerr << "usage: " << argv[0] << " MODEL.onnx STATS.json IMAGE [scale mean std]\n";
    return 2;
  }
  const float scale = argc == 7 ? std::strtof(argv[4], nullptr) : 1.0f;
  const float mean = argc == 7 ? std::strtof(argv[5], nullptr) : 0.0f;
  const float std_dev = argc == 7 ? std::strtof(argv[6], nullptr) : 1.0f;
  try {
    engine::api::Options o;
    o.precision = ENGINE_INT8;
    o.stats_file = argv[2];
    o.threads = 1;
    const engine::api::Model model = engine::api::Model::load(argv[1], o);
    const engine::api::TensorInfo in = model.inputs().at(0);
    if (in.shape.size() != 4) throw std::runtime_error("expected an [N,C,H,W] input");
    const int channels = int(in.shape[1]);

    int w = 0, h = 0, got = 0;
    std::unique_ptr<unsigned char, void (*)(void*)> pixels(
        stbi_load(argv[3], &w, &h, &got, channels), stbi_image_free);
    if (!pixels) throw std::runtime_error(std::string(argv[3]) + ": " + stbi_failure_reason());
    std::vector<float> x(size_t(channels) * size_t(h) * size_t(w));
    for (int c = 0; c < channels; ++c)
      for (size_t i = 0; i < size_t(h) * size_t(w); ++i)
        x[size_t(c) * size_t(h) * size_t(w) + i] =
            (float(pixels.get()[i * size_t(channels) + size_t(c)]) * scale - mean) / std_dev;

    engine::api::Session session = model.session();
    session.run({{in.name, {1, channels, h, w}, x.data()}});
    const engine::api::View y = session.output(model.outputs().at(0).name);
    const float* p = y.floats();
    const int64_t best = std::max_element(p, p + y.size()) - p;
    std::cout << "class " << best << " score " << p[best] << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
