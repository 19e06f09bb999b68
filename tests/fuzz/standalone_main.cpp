// A main() for the fuzz targets without libFuzzer (GCC builds, CI): runs the target on each file
// given, or with `--random N [SEED]` on N seeded random inputs of 16..96 bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--random") {
    const long n = std::strtol(argv[2], nullptr, 10);
    std::mt19937 rng(argc >= 4 ? unsigned(std::strtoul(argv[3], nullptr, 10)) : 1u);
    std::vector<uint8_t> buf;
    for (long i = 0; i < n; ++i) {
      buf.resize(16 + rng() % 81);
      for (auto& c : buf) c = uint8_t(rng());
      LLVMFuzzerTestOneInput(buf.data(), buf.size());
    }
    std::printf("%ld random inputs: no finding\n", n);
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("%d inputs: no finding\n", argc - 1);
  return 0;
}
