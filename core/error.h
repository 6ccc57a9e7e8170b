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

[[noreturn]] void assertion_failed(const char* expression, const std::source_location& where);

}  // namespace pimqat

#define PIMQAT_ASSERT(expression)                                                      \
  do {                                                                                 \
    if (!(expression)) [[unlikely]]                                                    \
      ::pimqat::assertion_failed(#expression, std::source_location::current());        \
  } while (false)
