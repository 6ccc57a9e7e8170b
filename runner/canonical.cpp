#include "runner/canonical.h"

#include <charconv>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace pimqat::runner {

std::string canonical_integer(std::int64_t value) { return std::to_string(value); }

std::string canonical_unsigned(std::uint64_t value) { return std::to_string(value); }

std::string canonical_float(double value) {
  if (!std::isfinite(value)) throw Error("canonical encoding: a parameter value is not a finite number");
  if (value == 0.0) return "0";  // +0 and -0 are one value
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round-trip form
  PIMQAT_ASSERT(result.ec == std::errc());
  return std::string(buffer, result.ptr);
}

std::string canonical_bool(bool value) { return value ? "true" : "false"; }

std::string canonical_string(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string canonical_integer_list(const std::vector<std::int64_t>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += canonical_integer(values[i]);
  }
  out += ']';
  return out;
}

std::string CanonicalRecord::encode() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : fields_) {
    if (!first) out += ',';
    first = false;
    out += canonical_string(key);
    out += ':';
    out += value;
  }
  out += '}';
  return out;
}

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::uint64_t identity_hash(std::string_view bytes) { return mix64(fnv1a64(bytes)); }

std::string hex16(std::uint64_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[value & 15];
    value >>= 4;
  }
  return out;
}

std::uint64_t parse_hex16(std::string_view text) {
  if (text.size() != 16) {
    throw Error("task identity `" + std::string(text) + "` must be exactly 16 hex digits");
  }
  std::uint64_t value = 0;
  for (const char c : text) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) throw Error("task identity `" + std::string(text) + "` has a character that is not a hex digit");
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return value;
}

}  // namespace pimqat::runner
