#pragma once
// Reference PIM kernels: the oracle. A literal scalar transcription of the sums of DESIGN.md 2.2
// with the ADC of 2.3 (pim/adc.h); every fast kernel (issue 4) must match it bit for bit.
//
// Layout: src = X, a row-major (K x P) matrix of activation integers in [0, 2^b_a - 1] (im2col
// order, pim/im2col.h); weights = W, a row-major (C_out x K) matrix of weight integers in
// [-2^(b_w-1), 2^(b_w-1) - 1]; dst = y~, a row-major (C_out x P) matrix.
// Row group g holds rows [g N, min(K, (g+1) N)); the ADC range always uses N (pim/scheme.h).
//   bit-serial:   p_gst = sum_{i in g} X_is W_it,  y~ = sum_g sum_s sum_t 2^s c_t Q(p_gst),
//                 X_s = bit s of X, W_t = bit t of W's b_w-bit two's complement,
//                 c_t = 2^t (t < b_w - 1), c_(b_w-1) = -2^(b_w-1)
//   differential: p+-_gs = sum_{i in g} X_is W+-_i, W+ = max(W, 0), W- = max(-W, 0),
//                 y~ = sum_g sum_s 2^s (Q(p+_gs) - Q(p-_gs))
//   native:       p_g = sum_{i in g} X_i W_i,  y~ = sum_g Q(p_g)
// ADC column of (g, o, t) = (g C_out + o) T + t (t = weight bit, or 0 = W+ / 1 = W-, or 0);
// conversion index (the thermal-noise draw, pim/gaussian.h) j = (column S + s) P + pixel.
//
// Exactness: y~ is the exact sum of the Q values, rounded once to double. With integer read-out
// (Delta <= 1) every Q is an integer and y~ = sum c Q is an exact int64 sum; otherwise
// Q = p_lo + Delta code and y~ = fma(Delta, A, p_lo C) with the exact integer sums A = sum c code
// and C = sum c (c = the coefficient 2^s c_t, +-2^s or 1 of each conversion). Either way the
// result does not depend on the order of summation.
#include <cstdint>

#include "core/tensor.h"
#include "pim/adc.h"
#include "pim/scheme.h"

namespace pimqat::pim {

inline std::uint64_t conversion_index(std::int64_t column, int slice, int slices, std::int64_t pixel,
                                      std::int64_t pixels) {
  return (static_cast<std::uint64_t>(column) * static_cast<std::uint64_t>(slices) + static_cast<std::uint64_t>(slice)) *
             static_cast<std::uint64_t>(pixels) +
         static_cast<std::uint64_t>(pixel);
}

// Throws pimqat::Error naming the first activation or weight outside its integer range.
void check_operands(const Decomposition& decomposition, const std::int32_t* src, const std::int32_t* weights,
                    Index reduction, Index pixels, Index out_channels);

// Throws pimqat::Error unless `bank` fits the decomposition (ADC range = the scheme's full range,
// column count when the columns are non-ideal).
void check_bank(const Decomposition& decomposition, const AdcBank& bank, Index reduction, Index out_channels);

// y~ of DESIGN.md 2.2 (validates the decomposition, the bank and the operands first).
void reference_pim_gemm(const Decomposition& decomposition, const AdcBank& bank, const std::int32_t* src,
                        const std::int32_t* weights, Index reduction, Index pixels, Index out_channels, double* dst);

// The exact integer product dst = W X (C_out x P).
void reference_exact_gemm(const std::int32_t* src, const std::int32_t* weights, Index reduction, Index pixels,
                          Index out_channels, std::int64_t* dst);

}  // namespace pimqat::pim
