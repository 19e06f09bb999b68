// The machine's int8 peak: a loop of independent VPDPBUSD instructions (zmm, and the VEX ymm
// form when the CPU has AVX-VNNI), timed on 1..N threads. One VPDPBUSD zmm does 64 u8 x s8
// multiply-adds = 128 integer ops. The figure is the denominator of "fraction of peak" in
// bench/RESULTS.md.
//
//   build/vnni_peak [threads]      (default: all cores)
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr long kIters = 200'000'000 / 12;  // 12 instructions per iteration

// 12 independent accumulator chains hide the instruction latency.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int zmm_loop(long iters) {
  __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
  __m512i s0 = a, s1 = a, s2 = a, s3 = a, s4 = a, s5 = a, s6 = a, s7 = a, s8 = a, s9 = a, s10 = a,
          s11 = a;
  for (long i = 0; i < iters; ++i) {
    asm volatile(
        "vpdpbusd %[b], %[a], %[s0]\n\tvpdpbusd %[b], %[a], %[s1]\n\t"
        "vpdpbusd %[b], %[a], %[s2]\n\tvpdpbusd %[b], %[a], %[s3]\n\t"
        "vpdpbusd %[b], %[a], %[s4]\n\tvpdpbusd %[b], %[a], %[s5]\n\t"
        "vpdpbusd %[b], %[a], %[s6]\n\tvpdpbusd %[b], %[a], %[s7]\n\t"
        "vpdpbusd %[b], %[a], %[s8]\n\tvpdpbusd %[b], %[a], %[s9]\n\t"
        "vpdpbusd %[b], %[a], %[s10]\n\tvpdpbusd %[b], %[a], %[s11]"
        : [s0] "+v"(s0), [s1] "+v"(s1), [s2] "+v"(s2), [s3] "+v"(s3), [s4] "+v"(s4), [s5] "+v"(s5),
          [s6] "+v"(s6), [s7] "+v"(s7), [s8] "+v"(s8), [s9] "+v"(s9), [s10] "+v"(s10),
          [s11] "+v"(s11)
        : [a] "v"(a), [b] "v"(b));
  }
  __m512i t = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
  t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(s4, s5), _mm512_add_epi32(s6, s7)));
  t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(s8, s9), _mm512_add_epi32(s10, s11)));
  alignas(64) int lanes[16];
  _mm512_store_si512(lanes, t);
  return lanes[0];
}

__attribute__((target("avx2,avxvnni"))) int ymm_loop(long iters) {
  __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2);
  __m256i s0 = a, s1 = a, s2 = a, s3 = a, s4 = a, s5 = a, s6 = a, s7 = a, s8 = a, s9 = a, s10 = a,
          s11 = a;
  for (long i = 0; i < iters; ++i) {
    asm volatile(
        "%{vex%} vpdpbusd %[b], %[a], %[s0]\n\t%{vex%} vpdpbusd %[b], %[a], %[s1]\n\t"
        "%{vex%} vpdpbusd %[b], %[a], %[s2]\n\t%{vex%} vpdpbusd %[b], %[a], %[s3]\n\t"
        "%{vex%} vpdpbusd %[b], %[a], %[s4]\n\t%{vex%} vpdpbusd %[b], %[a], %[s5]\n\t"
        "%{vex%} vpdpbusd %[b], %[a], %[s6]\n\t%{vex%} vpdpbusd %[b], %[a], %[s7]\n\t"
        "%{vex%} vpdpbusd %[b], %[a], %[s8]\n\t%{vex%} vpdpbusd %[b], %[a], %[s9]\n\t"
        "%{vex%} vpdpbusd %[b], %[a], %[s10]\n\t%{vex%} vpdpbusd %[b], %[a], %[s11]"
        : [s0] "+x"(s0), [s1] "+x"(s1), [s2] "+x"(s2), [s3] "+x"(s3), [s4] "+x"(s4), [s5] "+x"(s5),
          [s6] "+x"(s6), [s7] "+x"(s7), [s8] "+x"(s8), [s9] "+x"(s9), [s10] "+x"(s10),
          [s11] "+x"(s11)
        : [a] "x"(a), [b] "x"(b));
  }
  __m256i t = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
  t = _mm256_add_epi32(t, _mm256_add_epi32(_mm256_add_epi32(s4, s5), _mm256_add_epi32(s6, s7)));
  t = _mm256_add_epi32(t, _mm256_add_epi32(_mm256_add_epi32(s8, s9), _mm256_add_epi32(s10, s11)));
  return _mm256_extract_epi32(t, 0);
}

// Integer ops per second (2 per multiply-add) of `loop` on `threads` threads.
template <class F>
double gops(F loop, int threads, int lanes_bytes) {
  volatile int sink = 0;
  loop(kIters / 20);  // warm up (clock ramp)
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  sink = sink + loop(kIters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(kIters) * 12.0 * lanes_bytes * 2.0 * threads / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : omp_get_num_procs();
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni") && !__builtin_cpu_supports("avxvnni")) {
    std::printf("this CPU has no VPDPBUSD (neither AVX512-VNNI nor AVX-VNNI)\n");
    return 0;
  }
  std::printf("| instruction | threads | GOP/s (int8, 2 ops per multiply-add) | per thread |\n");
  std::printf("|---|---|---|---|\n");
  for (int t = 1; t <= max_threads; ++t) {
    if (__builtin_cpu_supports("avx512vnni")) {
      const double g = gops(zmm_loop, t, 64);
      std::printf("| vpdpbusd zmm | %d | %.0f | %.0f |\n", t, g, g / t);
    }
    if (__builtin_cpu_supports("avxvnni")) {
      const double g = gops(ymm_loop, t, 32);
      std::printf("| vpdpbusd ymm (VEX) | %d | %.0f | %.0f |\n", t, g, g / t);
    }
  }
  return 0;
}
