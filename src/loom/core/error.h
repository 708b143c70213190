#pragma once
// One error type for everything the user can get wrong (flags, files, shapes). The command-line front
// catches it, prints `loom: error: <message>` and exits with code 2.
#include <stdexcept>
#include <string>

namespace loom {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw UserError(message); }

inline void require(bool ok, const std::string& message) {
  if (!ok) fail(message);
}

}  // namespace loom
