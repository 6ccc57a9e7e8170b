#pragma once
// The input of the HDF5 targets: h5spec text (fuzz/h5spec.h), built into a file with the HDF5 C
// API; or, when the input starts with the 8-byte HDF5 signature, the raw bytes of a file.
//
// Raw bytes exercise libhdf5's own parser of the on-disk format, which is not pimqat code and
// is known to crash on some malformed files (docs/reliability.md). They are fuzzed only when
// PIMQAT_FUZZ_RAW_HDF5=1 is set; otherwise such inputs are skipped, so that the bounded CI runs
// report pimqat's findings.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_common.h"
#include "fuzz/h5spec.h"

namespace pimqat::fuzz {

inline constexpr char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

inline bool raw_hdf5_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("PIMQAT_FUZZ_RAW_HDF5");
    return v && std::string_view(v) == "1";
  }();
  return enabled;
}

// Writes the file for this input at `path`; false when the input is skipped.
inline bool make_hdf5_input(const std::uint8_t* data, std::size_t size, const std::string& path) {
  if (size >= sizeof kHdf5Signature && std::memcmp(data, kHdf5Signature, sizeof kHdf5Signature) == 0) {
    if (!raw_hdf5_enabled()) return false;
    write_file(path, data, size);
    return true;
  }
  return h5spec::build(std::string_view(reinterpret_cast<const char*>(data), size), path);
}

}  // namespace pimqat::fuzz
