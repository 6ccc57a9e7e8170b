#include "pim/scheme.h"

#include <string>
#include <vector>

#include "core/error.h"

namespace pimqat::pim {

std::string_view scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::BitSerial: return "bit-serial";
    case Scheme::Differential: return "differential";
    case Scheme::Native: return "native";
  }
  return "unknown";
}

Scheme parse_scheme(std::string_view text) {
  if (text == "bit-serial" || text == "bit_serial" || text == "bitserial") return Scheme::BitSerial;
  if (text == "differential") return Scheme::Differential;
  if (text == "native") return Scheme::Native;
  throw Error("unknown PIM scheme '" + std::string(text) + "' (valid: bit-serial, differential, native)");
}

int default_rows(Scheme scheme) {
  switch (scheme) {
    case Scheme::BitSerial:
    case Scheme::Differential: return 144;
    case Scheme::Native: return 9;
  }
  throw Error("unknown PIM scheme (enum value " + std::to_string(static_cast<int>(scheme)) + ")");
}

void Decomposition::validate() const {
  std::vector<std::string> problems;
  if (scheme != Scheme::BitSerial && scheme != Scheme::Differential && scheme != Scheme::Native)
    problems.push_back("unknown scheme (enum value " + std::to_string(static_cast<int>(scheme)) +
                       "; valid: bit-serial, differential, native)");
  if (rows < 1 || rows > kMaxRows)
    problems.push_back("rows (N) = " + std::to_string(rows) + " is outside [1, " + std::to_string(kMaxRows) + "]");
  if (act_bits < kMinOperandBits || act_bits > kMaxOperandBits)
    problems.push_back("activation bits = " + std::to_string(act_bits) + " is outside [" +
                       std::to_string(kMinOperandBits) + ", " + std::to_string(kMaxOperandBits) + "]");
  if (weight_bits < kMinOperandBits || weight_bits > kMaxOperandBits)
    problems.push_back("weight bits = " + std::to_string(weight_bits) + " is outside [" +
                       std::to_string(kMinOperandBits) + ", " + std::to_string(kMaxOperandBits) + "]");
  if (problems.empty()) return;
  std::string message = "invalid PIM decomposition:";
  for (const auto& p : problems) message += "\n  - " + p;
  throw Error(message);
}

int Decomposition::input_slices() const { return scheme == Scheme::Native ? 1 : act_bits; }

int Decomposition::column_slices() const {
  switch (scheme) {
    case Scheme::BitSerial: return weight_bits;
    case Scheme::Differential: return 2;
    case Scheme::Native: return 1;
  }
  return 1;
}

double Decomposition::p_lo() const {
  if (scheme == Scheme::Native) return -p_hi();
  return 0.0;
}

double Decomposition::p_hi() const {
  const double n = rows;
  switch (scheme) {
    case Scheme::BitSerial: return n;
    case Scheme::Differential: return n * static_cast<double>(1 << (weight_bits - 1));
    case Scheme::Native:
      return n * static_cast<double>((1 << act_bits) - 1) * static_cast<double>(1 << (weight_bits - 1));
  }
  return n;
}

std::string Decomposition::str() const {
  return std::string(scheme_name(scheme)) + " N=" + std::to_string(rows) + " b_a=" + std::to_string(act_bits) +
         " b_w=" + std::to_string(weight_bits);
}

}  // namespace pimqat::pim
