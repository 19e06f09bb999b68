// Warnings to silence around code written with x86 vector intrinsics, as one pair of macros
// instead of a pragma block in every kernel file:
// - -Wmaybe-uninitialized / -Wuninitialized: GCC 12's AVX-512 intrinsics pass an undefined vector
//   as the unused merge source, which its own flow analysis reports at every call site (a compiler
//   bug, fixed in later GCC). -Wmaybe-uninitialized is GCC-only.
// - -Wpsabi: functions that take or return vectors wider than the default target's registers get
//   an ABI note, although they are inlined or called only from code built for the same target.
#pragma once

#ifdef __clang__
#define ENGINE_SIMD_WARNINGS_OFF                                                       \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wpsabi\"")
#else
#define ENGINE_SIMD_WARNINGS_OFF                                                             \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")                                  \
          _Pragma("GCC diagnostic ignored \"-Wpsabi\"")
#endif
#define ENGINE_SIMD_WARNINGS_ON _Pragma("GCC diagnostic pop")
