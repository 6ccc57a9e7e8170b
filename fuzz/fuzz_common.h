#pragma once
// Shared pieces of the libFuzzer targets (docs/reliability.md).
//
// The contract every target checks: a reader of outside data either returns or throws
// pimqat::Error. Anything else is a finding and aborts the run so that libFuzzer saves the input:
//   - a sanitizer report (AddressSanitizer, UndefinedBehaviorSanitizer with -fno-sanitize-recover);
//   - an Error whose message starts with "internal error": a PIMQAT_ASSERT that input could reach;
//   - any other exception escaping the reader (std::out_of_range, std::bad_alloc, YAML::Exception,
//     ...): library code must turn bad input into pimqat::Error (STYLE.md);
//   - a broken property a target states (e.g. a round trip that does not give back its input).
// Readers that take paths get their input through files in one scratch directory per process,
// removed at exit.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "core/error.h"

namespace pimqat::fuzz {

// Prints what was found and aborts (libFuzzer then writes the crashing input).
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==pimqat-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Calls `read` and applies the contract above.
template <class F>
void expect_error_or_success(const char* reader, F&& read) {
  try {
    read();
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with("internal error"))
      finding(std::string(reader) + ": an assertion is reachable from input: " + e.what());
  } catch (const std::exception& e) {
    finding(std::string(reader) + ": threw a non-pimqat exception (" + typeid(e).name() + "): " + e.what());
  } catch (...) {
    finding(std::string(reader) + ": threw something that is not a std::exception");
  }
}

// A directory private to this process (removed at exit) for readers that take paths.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(base && *base ? base : "/tmp") /
                              ("pimqat-fuzz-" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

inline std::string scratch_path(const std::string& name) { return (scratch_dir() / name).string(); }

inline void write_file(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) finding("harness: cannot write scratch file " + path);
}
inline void write_file(const std::string& path, std::string_view text) { write_file(path, text.data(), text.size()); }

// Splits `data` at the first NUL byte: the part before, and the rest (empty without a NUL).
inline std::pair<std::string_view, std::string_view> split_at_nul(std::string_view data) {
  const auto nul = data.find('\0');
  if (nul == std::string_view::npos) return {data, {}};
  return {data.substr(0, nul), data.substr(nul + 1)};
}

}  // namespace pimqat::fuzz
