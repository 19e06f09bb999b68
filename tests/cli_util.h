// Runs the `engine` executable (path in ENGINE_CLI, set by CTest) and captures its output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

namespace engine::test {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

inline std::string cli_path() {
  const char* p = std::getenv("ENGINE_CLI");
  REQUIRE_MESSAGE(p, "ENGINE_CLI is not set (run the tests through ctest)");
  return p;
}

// with_stderr = false keeps only stdout (for --json); stderr then goes to /dev/null.
inline CliResult run_cli(const std::string& args, bool with_stderr = true) {
  CliResult r;
  const std::string cmd = cli_path() + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(f);
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else
    r.exit_code = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);  // a crash
  return r;
}

}  // namespace engine::test
