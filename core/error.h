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

// Thrown by a long loop that polls a stop flag (a signal, a time limit) once the flag is set: not a
// failure. The caller keeps what was finished before and runs the interrupted work again later.
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "interrupted by a stop request"; }
};

[[noreturn]] void assertion_failed(const char* expression, const std::source_location& where);

}  // namespace pimqat

#define PIMQAT_ASSERT(expression)                                                      \
  do {                                                                                 \
    if (!(expression)) [[unlikely]]                                                    \
      ::pimqat::assertion_failed(#expression, std::source_location::current());        \
  } while (false)
