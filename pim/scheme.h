#pragma once
// PIM decomposition schemes (DESIGN.md 2.2): how one layer's products X_i W_i are cut into row
// groups, input bit-slices and ADC columns, and the range [p_lo, p_hi] of the partial sums each
// ADC digitizes. docs/pim.md walks through the three schemes with small examples.
//
// Notation (all of it fixed by the hardware and the quantizers):
//   N = rows (row-group size), K = C_in*k*k reduction length, G = ceil(K/N) row groups (the last
//   one may be short, but the ADC range always uses N), b_a / b_w activation / weight bits.
//   X in [0, 2^b_a - 1], W in [-2^(b_w-1), 2^(b_w-1) - 1] (b_w-bit two's complement).
//
//   scheme        input slices S   columns T per (group, out channel)   partial-sum range
//   bit-serial    b_a (bits X_s)   b_w (weight bits W_t)                [0, N]
//   differential  b_a (bits X_s)   2   (W+ and W-, t = 0 is +)          [0, N 2^(b_w-1)]
//   native        1   (X itself)   1   (W itself)                       [-P, P], P = N (2^b_a - 1) 2^(b_w-1)
#include <cstdint>
#include <string>
#include <string_view>

#include "nn/config.h"

namespace pimqat::pim {

using ::pimqat::Scheme;

inline constexpr int kMinOperandBits = 2;  // b_a, b_w
inline constexpr int kMaxOperandBits = 8;
inline constexpr int kMaxRows = 1 << 16;

// "bit-serial", "differential", "native".
std::string_view scheme_name(Scheme scheme);
// Inverse of scheme_name (also accepts "bit_serial", "bitserial"); throws pimqat::Error naming the
// valid spellings.
Scheme parse_scheme(std::string_view text);
// Default row-group size N: 144 (bit-serial, differential), 9 (native).
int default_rows(Scheme scheme);

// One PIM layer's decomposition.
struct Decomposition {
  Scheme scheme = Scheme::BitSerial;
  int rows = 144;        // N
  int act_bits = 4;      // b_a
  int weight_bits = 4;   // b_w

  // Throws pimqat::Error listing every problem (rows outside [1, 65536], bits outside [2, 8],
  // an enum value that is no scheme).
  void validate() const;

  int input_slices() const;   // S
  int column_slices() const;  // T
  std::int64_t groups(std::int64_t reduction) const { return (reduction + rows - 1) / rows; }  // G
  // Physical ADC columns of a layer with `out_channels` outputs: G * C_out * T, numbered
  // column = (g * C_out + o) * T + t (DESIGN.md 2.3: one per row group, output channel, slice).
  std::int64_t columns(std::int64_t reduction, std::int64_t out_channels) const {
    return groups(reduction) * out_channels * column_slices();
  }
  // Full partial-sum range of DESIGN.md 2.2 (integers, exact in double).
  double p_lo() const;
  double p_hi() const;
  // Largest activation / smallest and largest weight integer.
  std::int32_t max_activation() const { return (1 << act_bits) - 1; }
  std::int32_t min_weight() const { return -(1 << (weight_bits - 1)); }
  std::int32_t max_weight() const { return (1 << (weight_bits - 1)) - 1; }
  std::string str() const;  // "bit-serial N=144 b_a=4 b_w=4"
};

}  // namespace pimqat::pim
