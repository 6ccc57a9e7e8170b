#pragma once
// Bit-plane PIM kernels for all three schemes (DESIGN.md 2.2): partial sums from AND + popcount
// over packed row groups, the ADC as a table lookup (or the level arithmetic plus thermal noise),
// shift-and-add, and the exact integer product from the same partial sums. Bit-identical to
// pim/kernels/reference.h (the oracle), noise included, on every instruction-set path
// (pim/kernels/dispatch.h); tests/pim/kernels_*.cpp check a seeded grid of shapes on each.
//
// Layout. A row group of N rows is cut into C16 = ceil(N / 16) chunks of 16 rows; row i of the
// reduction is local row r = i - g N of group g = i / N, chunk r / 16, bit r % 16 of a uint16;
// rows past K and chunk bits past N are 0. Pixels (im2col order (n, oh, ow)) come in blocks of
// kPimBlockPixels = 8; pixels past P are all-zero padding.
//   activations  x[block][g][s][chunk][lane]   uint16, s = 0 .. b_a-1 (bit s of X), lane = pixel % 8
//   weights      w[o][g][pass][chunk][slot]    uint16, 4 slots: the 4 planes of one pass side by
//                side, so w[o][g][pass][chunk] read as one uint64 holds 4 planes.
//   Weight planes: bit-serial and native: plane t = bit t of W's b_w-bit two's complement, pass t/4,
//   slot t%4 (passes = ceil(b_w / 4)); differential: magnitude bit u of W+ = max(W, 0) and of
//   W- = max(-W, 0) at pass u/2, slot 2 polarity + u%2 (polarity 0 = W+), passes = ceil(b_w / 2).
// Partial sums: cnt(s, plane) = sum_chunks popcount(x_s & w_plane);
//   bit-serial   p_gst = cnt(s, t)
//   differential p+-_gs = sum_u 2^u cnt(s, u, polarity)
//   native       p_g = sum_s sum_t 2^s c_t cnt(s, t)
//
// Results are integers (the reference's exact-sum rule): the PIM sum A = sum_conversions c v, with
// v = Q(p) when the ADC reads out integers (Delta <= 1) and v = code otherwise, so that
//   y~ = A (integer read-out)   or   y~ = fma(Delta, A, p_lo * C)   (C = sum_coefficient()),
// and the exact product y = sum X W. Exact for any operands in range (int64 sums; the SIMD paths
// use 16/32-bit lanes only where the bounds of the configuration allow it, else the portable path).
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "pim/adc.h"
#include "pim/im2col.h"
#include "pim/scheme.h"

namespace pimqat::pim {

inline constexpr Index kPimBlockPixels = 8;
inline constexpr int kPimChunkRows = 16;
inline constexpr int kPimSlots = 4;

struct PackedActivations {
  Index pixels = 0;
  Index groups = 0;
  int planes = 0;  // b_a
  int chunks = 0;  // C16
  std::vector<std::uint16_t> bits;
  std::vector<std::uint8_t> scratch;  // reused between packings (the padded byte image)
  Index blocks() const { return (pixels + kPimBlockPixels - 1) / kPimBlockPixels; }
  Index block_stride() const { return groups * planes * chunks * kPimBlockPixels; }
};

struct PackedWeights {
  Index out_channels = 0;
  Index groups = 0;
  int planes = 0;  // b_w (bit-serial, native) or 2 b_w (differential)
  int passes = 0;
  int chunks = 0;
  std::vector<std::uint16_t> bits;
  Index channel_stride() const { return groups * passes * chunks * kPimSlots; }
};

__extension__ typedef __int128 PimInt128;

// Exact first and second moments of the outputs of one product (integer sums: the same for any
// summation order, thread count or instruction set).
struct PimMoments {
  std::int64_t count = 0;
  PimInt128 pim_sum = 0, pim_square = 0;      // of A
  PimInt128 exact_sum = 0, exact_square = 0;  // of y
  void merge(const PimMoments& other);
  // n^2 var = n sum v^2 - (sum v)^2 >= 0, exact; as a double (correctly rounded conversion).
  double pim_scaled_variance() const;
  double exact_scaled_variance() const;
};

// C = the sum of the coefficients of one output (the same for every output): bit-serial
// G sum_s sum_t 2^s c_t, differential 0, native G.
std::int64_t sum_coefficient(const Decomposition& d, Index reduction);
// y~ from the PIM sum A (see above).
inline double pim_value(const Adc& adc, std::int64_t sum_coefficient, std::int64_t a) {
  return adc.integer_readout() ? static_cast<double>(a)
                               : std::fma(adc.delta(), static_cast<double>(a), adc.p_lo() * static_cast<double>(sum_coefficient));
}

// From a row-major (K x P) integer matrix (im2col order). Throws pimqat::Error for a value outside
// [0, 2^b_a - 1] (naming it).
void pack_activations(const Decomposition& d, const std::int32_t* src, Index reduction, Index pixels,
                      PackedActivations& out);
// Straight from an NCHW tensor of activation integers held as floats (the im2col is implicit;
// pixel order (n, oh, ow)), or, with channel_block = B > 0, from the same tensor in the blocked
// layout nChw{B}c (nn/conv.h: element (n, c, h, w) at (((n C/B + c/B) H + h) W + w) B + c % B;
// C must be a multiple of B); the packing is the same. Throws pimqat::Error for a value that is
// not an integer in range (naming its NCHW index).
void pack_activations(const Decomposition& d, const Im2colGeometry& geometry, const float* integers,
                      PackedActivations& out, Index channel_block = 0);
// The same from the layer's float input, quantized here: X = nn::activation_integer(x, alpha,
// (2^b_a - 1) / alpha), the operations of nn::quantize_activation, so the bits are those of
// packing its X (without writing X). Throws pimqat::Error for a NaN input (naming its NCHW index)
// or an alpha that is not positive and finite.
void pack_activations_quantized(const Decomposition& d, const Im2colGeometry& geometry, const float* src, float alpha,
                                PackedActivations& out, Index channel_block = 0);
// From a row-major (C_out x K) weight matrix (an OIHW tensor read as such), as int32 or as
// floats holding integers. Throws pimqat::Error for a value outside the weight range.
void pack_weights(const Decomposition& d, const std::int32_t* weights, Index reduction, Index out_channels,
                  PackedWeights& out);
void pack_weights(const Decomposition& d, const float* weights, Index reduction, Index out_channels,
                  PackedWeights& out);

// The integer form: A and y of every (o, pixel), written at
//   (pixel / image_pixels) * C_out * image_pixels + o * image_pixels + pixel % image_pixels,
// i.e. NCHW for image_pixels = OH * OW, or a (C_out x P) matrix for image_pixels = P; either
// destination may be null. `moments` (optional) receives the moments of all outputs (overwritten).
// Conversion numbering and noise as the reference.
void packed_pim_gemm_integer(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                             const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels,
                             std::int64_t* pim_sum, std::int64_t* exact_dst, PimMoments* moments);

// ADC tables (AdcBank::tables, the shared table of an ideal ADC) are built up to this many entries;
// beyond, a die without noise takes the level formula and anything else the scalar converter.
inline constexpr std::int64_t kDefaultMaxAdcTableEntries = std::int64_t{1} << 22;
// Sets the limit (tests exercise the routes beyond it); returns the previous one.
std::int64_t set_max_adc_table_entries(std::int64_t entries);

// y~ as doubles (pim_value of A) and the exact product; placement as above, either may be null.
void packed_pim_gemm(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                     const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels, double* pim_dst,
                     std::int64_t* exact_dst);

}  // namespace pimqat::pim
