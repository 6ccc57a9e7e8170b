#pragma once
// std::source_location for clang 14 with libstdc++ 12 (Debian 12's clang): libstdc++ implements
// it with __builtin_source_location, which clang has only from version 15, so <source_location>
// declares nothing there and core/error.h does not compile. The fuzz preset force-includes this
// header (-include); with a compiler that has the builtin it only includes <source_location>.
// Before C++20 (CMake's compiler checks compile with the default standard, gnu++14 for clang 14)
// it declares nothing: a fresh `cmake --preset fuzz` failed its compiler check on `consteval`.
#if __cplusplus >= 202002L
#include <source_location>
#if defined(__clang__) && __clang_major__ < 15 && !defined(__cpp_lib_source_location)
#include <cstdint>
namespace std {
struct source_location {
  // The default arguments are evaluated at the call site: the caller's file, function and line.
  static consteval source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           uint_least32_t line = __builtin_LINE(),
                                           uint_least32_t column = __builtin_COLUMN()) noexcept {
    source_location s;
    s.file_ = file;
    s.function_ = function;
    s.line_ = line;
    s.column_ = column;
    return s;
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr uint_least32_t line() const noexcept { return line_; }
  constexpr uint_least32_t column() const noexcept { return column_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  uint_least32_t line_ = 0;
  uint_least32_t column_ = 0;
};
}  // namespace std
#endif
#endif  // C++20
