// Errors: one exception type whose message says what was wrong and where.
#pragma once

#include <charconv>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace engine {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str_cat(std::forward<Args>(args)...));
}

// The whole of `s` as a decimal integer in [lo, hi]; otherwise an Error naming `what`.
inline int64_t parse_int64(const std::string& s, const std::string& what, int64_t lo = INT64_MIN,
                           int64_t hi = INT64_MAX) {
  int64_t x = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || x < lo || x > hi)
    fail(what, ": '", s, "' is not an integer in ", lo, "..", hi);
  return x;
}

}  // namespace engine

// Arguments are only evaluated when the condition is false.
#define ENGINE_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::engine::fail(__VA_ARGS__); \
  } while (0)
