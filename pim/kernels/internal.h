#pragma once
// Module-private: the plan of one PIM product shared by the instruction-set paths
// (pim/kernels/portable.cpp, avx2.cpp, avx512.cpp). Everything here is fixed before a kernel runs
// (tables, bounds, noise words), so the kernels only compute. See pim/kernels/packed.h for the
// layouts and the exactness rule.
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "nn/quantize.h"
#include "pim/adc.h"
#include "pim/gaussian.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/packed.h"
#include "pim/scheme.h"

namespace pimqat::pim::detail {

// How the partial sums p become the values v that are accumulated (A += c v).
enum class AdcPath {
  Lossless,     // ideal ADC with Q(p) = p: v = p
  SharedTable,  // fixed ADC, the same for every column: v = table[p - p_lo]
  ColumnTable,  // fixed ADC per column (a die without noise): v = table[column * points + p - p_lo]
  Noisy,        // thermal noise: code = clamp(floor(fma(sigma, z_j, level(column, p)) + 1/2)), v = code_value[code]
                // by the fast decision (pim/gaussian.h); sigma = 0: code of the level, no noise drawn
                // (a die without noise whose tables would be too big)
  Direct,       // anything else: AdcBank::convert per conversion (scalar)
};

struct GemmPlan {
  // The product.
  Scheme scheme = Scheme::BitSerial;
  int act_bits = 0, weight_bits = 0, rows = 0;
  int slices = 0;         // S
  int column_slices = 0;  // T
  Index reduction = 0, groups = 0, out_channels = 0, pixels = 0, blocks = 0, image_pixels = 0;
  int chunks = 0, passes = 0;
  const std::uint16_t* x = nullptr;
  const std::uint16_t* w = nullptr;
  Index x_block_stride = 0, w_channel_stride = 0;

  // Outputs (any may be null).
  std::int64_t* pim_sum = nullptr;
  std::int64_t* exact = nullptr;
  PimMoments* moments = nullptr;

  // The ADC.
  AdcPath path = AdcPath::Direct;
  std::int64_t p_lo = 0, p_hi = 0, points = 0;  // integer partial-sum range [p_lo, p_hi], points = p_hi - p_lo + 1
  const std::int32_t* table = nullptr;         // SharedTable / ColumnTable values v
  // SharedTable whose values are codes (no integer read-out) that one float formula reproduces:
  // v(p) = clamp(floor(fmaf(code_scale, float(p), code_offset)), 0, max_code) for every p in
  // [p_lo, p_hi] except the code_exceptions points exception_p[i], whose v is exception_code[i]
  // (levels halfway between codes); checked against the table point by point when the plan is
  // made (make_plan). The AVX-512 signed schemes then compute v instead of gathering it.
  static constexpr int kMaxCodeExceptions = 8;
  bool linear_codes = false;
  float code_scale = 0.0f, code_offset = 0.0f;
  int code_exceptions = 0;
  std::int32_t exception_p[kMaxCodeExceptions] = {}, exception_code[kMaxCodeExceptions] = {};
  // Noisy: the noise-free level of (column, p) is levels[column * level_stride + p - p_lo] when
  // levels is set (level_stride 0: the same for every column), else the linear model's arithmetic
  // gain[column] (p - p_lo_adc) / delta + offset[column] (gains/offsets null: ideal 1 and 0).
  const double* levels = nullptr;
  Index level_stride = 0;
  const double* gains = nullptr;
  const double* offsets = nullptr;
  double adc_p_lo = 0.0, delta = 1.0;
  // Noisy with sigma > 0: the AVX-512 fast decision (avx512.cpp convert8) may take the level of a
  // linear-model column as fma(slopes[column], p - p_lo_adc, offset[column]) (slopes null: `slope`
  // for every column, offsets null: 0), within a few ulps of AdcBank::level, and decides with the
  // margin decision_margin >= 256 ulp of every value it compares (see convert8). fast_levels:
  // such slopes are set (linear model); otherwise the exact levels above.
  bool fast_levels = false;
  const double* slopes = nullptr;
  double slope = 1.0;
  double decision_margin = 0.0;
  int max_code = 1;
  const std::int32_t* code_value = nullptr;  // code -> v (integer read-out), null: v = code
  double sigma = 0.0;
  PhiloxWords noise;
  bool noise_words = false;  // the noise stream's Philox words are known (else RandomStream::block)
  // The noise can be made in bulk (SIMD Philox): none is needed (sigma = 0) or its words are known.
  bool bulk_noise() const { return sigma == 0.0 || noise_words; }
  const AdcBank* bank = nullptr;
  // Philox block b of the noise stream.
  PhiloxBlock noise_block(std::uint64_t b) const {
    return noise_words ? philox_block(noise, b) : bank->noise_stream().block(b);
  }
  std::int64_t sum_coefficient = 0;

  // Bounds over all operands in range: |v| <= max_value, every |A| and |y| <= max_output (used by
  // the SIMD paths to pick 16/32-bit lanes).
  std::int64_t max_value = 0;
  std::int64_t max_output = 0;

  Index out_index(Index o, Index pixel) const {
    return (pixel / image_pixels) * out_channels * image_pixels + o * image_pixels + pixel % image_pixels;
  }
  // c_t of bit-serial and native (DESIGN.md 2.2).
  std::int64_t weight_coefficient(int t) const {
    return t < weight_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
  }
};

// Weight plane of (u, polarity) in the differential layout, and of bit t otherwise.
inline int differential_pass(int u) { return u / 2; }
inline int differential_slot(int u, int polarity) { return 2 * polarity + u % 2; }

// The paths. The SIMD ones return false (having done nothing) for a plan they do not cover; the
// portable one covers every plan.
void gemm_portable(const GemmPlan& plan);
bool gemm_avx2(const GemmPlan& plan);
bool gemm_avx512(const GemmPlan& plan);

// Bits of one block from its byte tile: tile[(g C16 + chunk) 16 + r][lane] (uint8 activation
// integers, zero where padded) -> out[g][s][chunk][lane] (the block's part of PackedActivations).
using ExtractBits = void (*)(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out);
void extract_bits_portable(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out);
void extract_bits_avx2(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out);
void extract_bits_avx512(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out);

// One block packed straight from a zero-padded byte image: lane l < valid reads
// source[base[l] + row_offset[t]] for tile row t (row_offset[t] < 0: a zero row), lanes past
// `valid` are zero; out as for ExtractBits. `source` must be readable 8 bytes before its first and
// after its last byte (the SIMD paths load whole 8-byte rows).
struct BlockSource {
  const std::uint8_t* source;
  const Index* row_offset;  // G C16 16 entries
  Index groups;
  int chunks, planes;
};
using PackBlock = void (*)(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out);
void pack_block_portable(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out);
void pack_block_avx2(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out);
void pack_block_avx512(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out);

// How a row of float activations becomes bytes: either they are the integers X already
// (checked: an integer in [0, max_value]), or they are the layer's float input and X is made
// here with the activation quantizer's operations (nn::activation_integer with alpha and
// to_integer: the same X bit for bit; only NaN is bad).
struct RowFormat {
  float max_value = 0.0f;
  bool quantize = false;
  float alpha = 0.0f, to_integer = 0.0f;
  // The byte of one value and whether it was good (a bad value gives 0).
  std::uint8_t byte(float v, bool& ok) const {
    if (quantize) {
      ok = !std::isnan(v);
      return static_cast<std::uint8_t>(ok ? nn::activation_integer(v, alpha, to_integer) : 0.0f);
    }
    ok = v >= 0.0f && v <= max_value && v == std::floor(v);  // NaN compares false: bad
    return static_cast<std::uint8_t>(ok ? v : 0.0f);
  }
};
// dst[i] = the byte of src[i step] for i < n (RowFormat) when every value is good (returns true);
// otherwise returns false (dst then holds unspecified bytes). step >= 1 (an activation row in
// NCHW has step 1, in the blocked layout nChw{B}c step B).
using ConvertRow = bool (*)(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst);
bool convert_row_portable(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst);
bool convert_row_avx2(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst);
bool convert_row_avx512(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst);

// The plan of thermal_codes: only the noise of `stream` at `sigma` over `bank`'s ADC (the bank must
// outlive the plan). Shared by every path's thermal_codes.
inline GemmPlan thermal_plan(const PhiloxWords& stream, double sigma, const AdcBank& bank) {
  GemmPlan plan;
  plan.sigma = sigma;
  plan.noise = stream;
  plan.noise_words = true;
  plan.bank = &bank;
  plan.max_code = bank.adc().max_code();
  return plan;
}

// thermal_codes (pim/kernels/noise.h) on each path.
std::uint64_t thermal_codes_portable(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma,
                                     const Adc& adc, const double* levels, std::int32_t* codes);
std::uint64_t thermal_codes_avx2(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma, const Adc& adc,
                                 const double* levels, std::int32_t* codes);
std::uint64_t thermal_codes_avx512(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma,
                                   const Adc& adc, const double* levels, std::int32_t* codes);

// The fast decision of pim/gaussian.h for one conversion (sigma > 0): the code when the bounds of
// the coarse value's bucket give the same code, else -1 (then the fine word decides:
// thermal_fine_code).
inline int thermal_bucket_code(const Adc& adc, double sigma, double level, const float* edges, std::uint32_t coarse) {
  const std::uint32_t bucket = coarse >> kThermalCoarseShift;
  const double lo = static_cast<double>(edges[bucket]) - kThermalBucketMargin;
  const double hi = static_cast<double>(edges[bucket + 1]) + kThermalBucketMargin;
  const int code = adc.code(std::fma(sigma, lo, level));
  return code == adc.code(std::fma(sigma, hi, level)) ? code : -1;
}
// The code from the exact normal of conversion j (coarse value known, fine word drawn).
inline int thermal_fine_code(const GemmPlan& plan, const Adc& adc, double level, std::uint64_t j,
                             std::uint32_t coarse) {
  const std::uint32_t fine = thermal_fine(plan.noise_block(thermal_fine_block(j)), j);
  return adc.code(std::fma(plan.sigma, thermal_normal(coarse, fine), level));
}

// Thread-local partial moments, merged at the end of a product.
struct MomentAccumulator {
  PimMoments m;
  void add(std::int64_t a, std::int64_t y) {
    ++m.count;
    m.pim_sum += a;
    m.pim_square += static_cast<PimInt128>(a) * a;
    m.exact_sum += y;
    m.exact_square += static_cast<PimInt128>(y) * y;
  }
};

}  // namespace pimqat::pim::detail
