#pragma once
// Canonical encoding of resolved parameters and the task identity hash (DESIGN.md 2.6, 5).
//
// A task's identity must not depend on how its sweep file was written: key order, number spelling
// (0.5, 5e-1, 0.50) and comments are irrelevant; any changed value changes it. Parameters are
// therefore encoded from their *parsed* values as one flat JSON object with keys sorted bytewise:
//   {"eval.noise_sigma":0.5,"model.arch":"resnet20","task.kind":"eval",...}
// Numbers: integers in decimal; finite doubles in the shortest text that reads back to the same
// double (std::to_chars, exact and platform-independent), -0 written as 0.
// Identity: FNV-1a 64 over the bytes of the encoding, then the SplitMix64 finalizer (core/rng.h,
// mix64: a bijection, so it spreads bits without adding collisions), printed as 16 lowercase hex
// digits. The value of a given encoding is fixed forever (a test pins it).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pimqat::runner {

std::string canonical_integer(std::int64_t value);
std::string canonical_unsigned(std::uint64_t value);
// Throws pimqat::Error for a NaN or an infinity (no canonical form).
std::string canonical_float(double value);
std::string canonical_bool(bool value);
// A JSON string literal: quotes, backslash and control characters escaped.
std::string canonical_string(std::string_view value);
std::string canonical_integer_list(const std::vector<std::int64_t>& values);

// A flat record of named, already-encoded values; encode() sorts the keys bytewise.
class CanonicalRecord {
 public:
  void set_integer(const std::string& key, std::int64_t value) { fields_[key] = canonical_integer(value); }
  void set_unsigned(const std::string& key, std::uint64_t value) { fields_[key] = canonical_unsigned(value); }
  void set_float(const std::string& key, double value) { fields_[key] = canonical_float(value); }
  void set_bool(const std::string& key, bool value) { fields_[key] = canonical_bool(value); }
  void set_string(const std::string& key, std::string_view value) { fields_[key] = canonical_string(value); }
  // `encoded` must already be canonical text (one of the canonical_* functions above).
  void set_encoded(const std::string& key, std::string encoded) { fields_[key] = std::move(encoded); }
  void erase(const std::string& key) { fields_.erase(key); }
  bool contains(const std::string& key) const { return fields_.count(key) != 0; }
  const std::map<std::string, std::string>& fields() const { return fields_; }

  // {"key":value,...} with keys sorted bytewise, no white space.
  std::string encode() const;

 private:
  std::map<std::string, std::string> fields_;
};

// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
std::uint64_t fnv1a64(std::string_view bytes);
// The identity hash: mix64(fnv1a64(bytes)).
std::uint64_t identity_hash(std::string_view bytes);
// 16 lowercase hex digits, most significant first.
std::string hex16(std::uint64_t value);
// Inverse of hex16 (accepts upper case too); throws pimqat::Error unless exactly 16 hex digits.
std::uint64_t parse_hex16(std::string_view text);
// hex16(identity_hash(canonical)): the `id` of a TaskSpec.
inline std::string identity_of(std::string_view canonical) { return hex16(identity_hash(canonical)); }

}  // namespace pimqat::runner
