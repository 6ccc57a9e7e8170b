#pragma once
// Errors: pimqat::Error for bad input and failed system calls (what the user sees), and
// PIMQAT_ASSERT for internal invariants (a failed assert is a bug in pimqat, not in the input).
#include <source_location>
#include <stdexcept>
#include <string>

namespace pimqat {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A failure that the same inputs reproduce bit for bit (DESIGN.md 2.6), e.g. a training that
// diverges: running the task again cannot help, so the sweep runner does not retry it.
class ReproducibleError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void assertion_failed(const char* expression, const std::source_location& where);

}  // namespace pimqat

#define PIMQAT_ASSERT(expression)                                                      \
  do {                                                                                 \
    if (!(expression)) [[unlikely]]                                                    \
      ::pimqat::assertion_failed(#expression, std::source_location::current());        \
  } while (false)
