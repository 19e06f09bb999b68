// A main() for the fuzz targets without libFuzzer (GCC builds, CI):
//   fuzz_X [--random N SEED] [FILE...]
// runs the target on N seeded random inputs of 16..96 bytes, then on each file given (e.g. the
// regression inputs in tests/fuzz/regressions/).
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
  int first_file = 1;
  long n = 0;
  if (argc >= 4 && std::string(argv[1]) == "--random") {
    n = std::strtol(argv[2], nullptr, 10);
    std::mt19937 rng(unsigned(std::strtoul(argv[3], nullptr, 10)));
    std::vector<uint8_t> buf;
    for (long i = 0; i < n; ++i) {
      buf.resize(16 + rng() % 81);
      for (auto& c : buf) c = uint8_t(rng());
      LLVMFuzzerTestOneInput(buf.data(), buf.size());
    }
    first_file = 4;
  }
  for (int i = first_file; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("%ld random inputs and %d files: no finding\n", n, argc - first_file);
  return 0;
}
