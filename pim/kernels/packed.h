#pragma once
// Bit-plane PIM kernels for all three schemes (DESIGN.md 2.2): partial sums from AND + popcount
// over packed row groups, the ADC as a table lookup where it is fixed, and the exact integer
// product from the same partial sums. Bit-identical to pim/kernels/reference.h (the oracle),
// noise included (tests/pim/packed.cpp).
//
// Layout (W = ceil(N / 64) words per row group; row i of the reduction is row r = i - g N of
// group g = i / N, stored in word r / 64, bit r % 64; rows past K are 0). Pixels are processed in
// lanes of kPimLanes: pixel = block * kPimLanes + lane (pixels past P are all-zero padding).
//   activations  x_bits[block][g][s][word][lane]  s = 0 .. b_a-1: bit s of X (every scheme)
//   weights      w_bits[o][g][plane][word]    bit-serial, native: plane t = bit t of W's b_w-bit
//                two's complement; differential: planes 0 .. b_w-1 = bits of W+ = max(W, 0),
//                planes b_w .. 2 b_w-1 = bits of W- = max(-W, 0).
// Partial sums: bit-serial p_gst = sum_w popcount(x_s & w_t); differential
//   p+-_gs = sum_u 2^u popcount(x_s & W+-_u); native p_g = sum_s sum_t 2^s c_t popcount(x_s & w_t).
// The lane loops (AND + popcount of kPimLanes words against one broadcast weight word, the ADC
// table lookup, shift-and-add) are written for the compiler's vectorizer (VPOPCNTQ on AVX-512).
// All sums are exact integers; the output follows the reference's exact-sum rule. Where the
// ADC is fixed (no thermal noise) it is a table p -> value per column (or one for ideal columns);
// with noise every conversion goes through AdcBank::convert with the reference's numbering.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "pim/adc.h"
#include "pim/im2col.h"
#include "pim/scheme.h"

namespace pimqat::pim {

inline constexpr Index kPimLanes = 32;

struct PackedActivations {
  Index pixels = 0;
  Index groups = 0;
  int planes = 0;
  int words = 0;
  std::vector<std::uint64_t> bits;
  Index blocks() const { return (pixels + kPimLanes - 1) / kPimLanes; }
  Index block_stride() const { return groups * planes * words * kPimLanes; }
};

struct PackedWeights {
  Index out_channels = 0;
  Index groups = 0;
  int planes = 0;
  int words = 0;
  std::vector<std::uint64_t> bits;
  Index channel_stride() const { return groups * planes * words; }
};

// From a row-major (K x P) integer matrix (im2col order). Throws pimqat::Error for a value outside
// [0, 2^b_a - 1] (naming it).
void pack_activations(const Decomposition& d, const std::int32_t* src, Index reduction, Index pixels,
                      PackedActivations& out);
// Straight from an NCHW tensor of activation integers held as floats (the im2col is implicit;
// pixel order (n, oh, ow)). Throws pimqat::Error for a value that is not an integer in range.
void pack_activations(const Decomposition& d, const Im2colGeometry& geometry, const float* integers,
                      PackedActivations& out);
// From a row-major (C_out x K) weight matrix (an OIHW tensor read as such), as int32 or as
// floats holding integers. Throws pimqat::Error for a value outside the weight range.
void pack_weights(const Decomposition& d, const std::int32_t* weights, Index reduction, Index out_channels,
                  PackedWeights& out);
void pack_weights(const Decomposition& d, const float* weights, Index reduction, Index out_channels,
                  PackedWeights& out);

// y~ (and the exact product) of every (o, pixel), written at
//   (pixel / image_pixels) * C_out * image_pixels + o * image_pixels + pixel % image_pixels,
// i.e. NCHW for image_pixels = OH * OW, or a (C_out x P) matrix for image_pixels = P.
// Either destination may be null. Conversion numbering and noise as the reference.
void packed_pim_gemm(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                     const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels, double* pim_dst,
                     std::int64_t* exact_dst);

}  // namespace pimqat::pim
