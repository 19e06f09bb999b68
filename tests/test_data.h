// Where tests find the shared data folder (models, images, reference outputs; see
// ../shared/README.md).
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace engine::test {

// $ENGINE_DATA, or "../shared" relative to the current directory when it is unset. When
// $ENGINE_DATA names a missing folder the calling test FAILs (a misconfigured run must not pass
// silently); when it is unset and ../shared is missing this prints why and returns "", and the
// caller skips:   const std::string data = test_data_dir(); if (data.empty()) return;
inline std::string test_data_dir() {
  const char* env = std::getenv("ENGINE_DATA");
  if (env && *env) {
    if (!std::filesystem::is_directory(env))
      FAIL("ENGINE_DATA=" << std::string(env) << " is not a directory");
    return env;
  }
  if (!std::filesystem::is_directory("../shared")) {
    MESSAGE("skipping: shared test data not found at ../shared (set ENGINE_DATA)");
    return "";
  }
  return "../shared";
}

}  // namespace engine::test
