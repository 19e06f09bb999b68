// Errors: one exception type whose message says what was wrong and where.
#pragma once

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

}  // namespace engine

// Arguments are only evaluated when the condition is false.
#define ENGINE_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::engine::fail(__VA_ARGS__); \
  } while (0)
