#pragma once
// Standard normal numbers from counter-based random bits (DESIGN.md 2.6), defined so that SIMD
// kernels reproduce them bit for bit: the Box-Muller pair of the die parameters (pim/die.h) and the
// thermal noise of every ADC conversion.
//
// 1. gaussian_pair(a, b): the Box-Muller transform of two 32-bit words (die parameters).
//   u1 = ((a >> 8) + 1) / 2^24 in (0, 1],   v = b >> 8 in [0, 2^24),   theta = 2 pi v / 2^24
//   r  = sqrt(-2 ln u1),   (z0, z1) = (r cos theta, r sin theta)
// ln and (cos, sin) are evaluated with fixed polynomials in single precision using only
// correctly rounded IEEE-754 operations (+, -, *, /, sqrt), explicit fused multiply-adds
// (std::fma) and exact integer/bit manipulations. Absolute error of z against the exact transform
// of the same (u1, theta): below 2e-6; |z| <= 5.77.
//
// 2. Thermal noise of conversion j of a noise stream (pim/adc.h, AdcBank::convert), by inversion:
//   coarse  c(j) = 16-bit half (j & 1 = 0: the low half) of word (j >> 1) & 3 of Philox block j >> 3
//                  (one block serves 8 consecutive conversions; its words read as little-endian
//                  uint16 are the coarse values in conversion order)
//   fine    f(j) = word j & 3 of Philox block (2^63 | j >> 2) of the same stream, >> 8 (24 bits)
//   U = (c + (f + 1/2) 2^-24) 2^-16, an odd multiple of 2^-41 in (0, 1) (exact in double)
//   z = Q(U), Q the standard normal quantile by Acklam's rational approximation (relative error
//       below 1.15e-9; |z| <= 7.1, no tail is cut beyond what 41 bits of U resolve)
//   code = clamp(floor(fma(sigma, z, level) + 1/2), 0, 2^b - 1)   (Adc::code)
// Q is evaluated in double with correctly rounded +, -, *, /, sqrt, explicit std::fma for every
// multiply-add of its polynomials and its own logarithm (no libm log/exp/erf), out of line in
// pim/gaussian.cpp: every machine, compiler and kernel path gets the same bits. Q(1 - U) = -Q(U)
// exactly (1 - U is exact; both halves use the same formulas).
//
// The fast decision (what makes thermal noise cheap; pim/kernels/): the coarse value alone fixes
// U to the bucket b = c >> 4 of width 1/4096, U in (b/4096, (b+1)/4096). With the table
// E[i] = float(Q(i/4096)) (E[0] = -inf, E[4096] = +inf) and the margin m = 1e-5 (which covers the
// float rounding of E for |z| < 8 and any non-monotonicity of the evaluated Q, < 1e-8):
//   E[b] - m <= Q(U) <= E[b+1] + m       (in double; tests/pim/gaussian.cpp checks it)
// fma, +1/2, floor and the clamp are monotone in z for sigma > 0, so the codes of the two bounds
// bracket the exact code; when they agree (all but about (code thresholds within the noise's
// range) / 4096 of the conversions) that is the exact code and the fine word is never made.
// Otherwise the fine word is drawn and the code computed from Q(U). sigma = 0 never uses the
// table (0 * inf would be NaN): there is no noise to draw.
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/rng.h"

namespace pimqat::pim {

// ---------------------------------------------------------------------------------------------
// 1. Box-Muller pairs (die parameters).

struct GaussianPair {
  float z0;  // r cos theta
  float z1;  // r sin theta
};

namespace gaussian_detail {
inline constexpr float kLn2 = 0.693147180559945309f;
inline constexpr float kHalfPi = 1.57079632679489662f;
inline constexpr float kSqrtHalf = 0.707106781186547524f;
inline constexpr float kSqrt2 = 1.41421356237309505f;

// ln(m / 2^24) for an integer m in [1, 2^24].
inline float log_of_uniform(std::uint32_t m) {
  const float x = static_cast<float>(m);  // exact: m <= 2^24
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  int exponent = static_cast<int>(bits >> 23) - 127;
  float f = std::bit_cast<float>((bits & 0x007FFFFFu) | 0x3F800000u);  // mantissa in [1, 2)
  if (f > kSqrt2) {  // f in (sqrt(1/2), sqrt(2)] keeps |s| <= 0.1716
    f = f * 0.5f;
    exponent += 1;
  }
  // ln f = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + s^7/7 + s^9/9 + ...), s = (f - 1)/(f + 1).
  const float s = (f - 1.0f) / (f + 1.0f);
  const float s2 = s * s;
  float p = std::fma(s2, 1.0f / 9.0f, 1.0f / 7.0f);
  p = std::fma(s2, p, 1.0f / 5.0f);
  p = std::fma(s2, p, 1.0f / 3.0f);
  p = std::fma(s2, p, 1.0f);
  const float ln_f = (s + s) * p;
  return std::fma(static_cast<float>(exponent - 24), kLn2, ln_f);
}
}  // namespace gaussian_detail

inline GaussianPair gaussian_pair(std::uint32_t a, std::uint32_t b) {
  using namespace gaussian_detail;
  const float ln_u1 = log_of_uniform((a >> 8) + 1u);
  const float r = std::sqrt(-2.0f * ln_u1);
  // theta = (q + f) pi/2 with quadrant q = v >> 22 and f = (v mod 2^22) / 2^22 in [0, 1) (exact);
  // x = (f - 1/2) pi/2 in [-pi/4, pi/4), theta = q pi/2 + pi/4 + x.
  const std::uint32_t v = b >> 8;
  const std::uint32_t quadrant = v >> 22;
  const float f = static_cast<float>(v & 0x003FFFFFu) * (1.0f / 4194304.0f);
  const float x = (f - 0.5f) * kHalfPi;
  const float x2 = x * x;
  // Taylor polynomials on |x| <= pi/4 (truncation error < 2e-9 for sin, < 1e-10 for cos).
  float ps = std::fma(x2, 1.0f / 362880.0f, -1.0f / 5040.0f);
  ps = std::fma(x2, ps, 1.0f / 120.0f);
  ps = std::fma(x2, ps, -1.0f / 6.0f);
  ps = std::fma(x2, ps, 1.0f);
  float pc = std::fma(x2, -1.0f / 3628800.0f, 1.0f / 40320.0f);
  pc = std::fma(x2, pc, -1.0f / 720.0f);
  pc = std::fma(x2, pc, 1.0f / 24.0f);
  pc = std::fma(x2, pc, -0.5f);
  const float cos_x = std::fma(x2, pc, 1.0f);
  // Rotate by pi/4: cos(pi/4 + x) = (cos x - sin x)/sqrt 2, sin(pi/4 + x) = (cos x + sin x)/sqrt 2,
  // with sin x = x ps fused into the sum (explicit FMAs: a compiler may not contract anything else
  // here, so every build and every SIMD path computes the same bits; GCC's default
  // -ffp-contract=fast formed exactly these FMAs in -march=native builds before they were explicit).
  const float c45 = std::fma(-x, ps, cos_x) * kSqrtHalf;
  const float s45 = std::fma(x, ps, cos_x) * kSqrtHalf;
  // Rotate by q pi/2.
  float c = c45, s = s45;
  switch (quadrant) {
    case 0: break;
    case 1: c = -s45; s = c45; break;
    case 2: c = -c45; s = -s45; break;
    default: c = s45; s = -c45; break;
  }
  return {r * c, r * s};
}

// ---------------------------------------------------------------------------------------------
// 2. Thermal noise.

// The version of the thermal-noise definition: 1 was one Box-Muller normal (section 1) per
// conversion, 2 is the quantile definition above. Results of noisy evaluations depend on it, so
// evaluation tasks with thermal noise carry it in their identity (runner/sweep.cpp, eval_canonical):
// change it with the definition.
inline constexpr int kThermalNoiseModel = 2;

inline constexpr int kThermalBucketBits = 12;  // 4096 buckets of U
inline constexpr int kThermalBuckets = 1 << kThermalBucketBits;
inline constexpr int kThermalCoarseShift = 16 - kThermalBucketBits;  // bucket = coarse >> 4
inline constexpr double kThermalBucketMargin = 1e-5;

// Philox blocks and words of conversion j (the addressing rule above).
inline std::uint64_t thermal_coarse_block(std::uint64_t j) { return j >> 3; }
inline std::uint64_t thermal_fine_block(std::uint64_t j) { return (std::uint64_t{1} << 63) | (j >> 2); }
inline std::uint32_t thermal_coarse(const PhiloxBlock& coarse_block, std::uint64_t j) {
  const std::uint32_t word = coarse_block[(j >> 1) & 3u];
  return (j & 1u) ? word >> 16 : word & 0xFFFFu;
}
inline std::uint32_t thermal_fine(const PhiloxBlock& fine_block, std::uint64_t j) { return fine_block[j & 3u] >> 8; }

// U = (c + (f + 1/2) 2^-24) 2^-16 for c < 2^16, f < 2^24 (every step exact).
inline double thermal_uniform(std::uint32_t coarse, std::uint32_t fine) {
  return (static_cast<double>(coarse) * 16777216.0 + (static_cast<double>(fine) + 0.5)) * 0x1p-40;
}

// Q(u), the standard normal quantile (Acklam's approximation, see above), for u in (0, 1).
double normal_quantile(double u);
// z = Q(U(coarse, fine)).
inline double thermal_normal(std::uint32_t coarse, std::uint32_t fine) {
  return normal_quantile(thermal_uniform(coarse, fine));
}
// z of conversion j of a stream (two Philox blocks: the definition, not the fast decision).
double thermal_normal_at(const RandomStream& stream, std::uint64_t j);

// E[0 .. 4096] (above), built on first use (thread-safe); E[b] and E[b+1] bound bucket b.
const float* thermal_bucket_edges();

namespace gaussian_detail {
// ln x for a positive normal double x: x = m 2^e with m in (sqrt(1/2), sqrt(2)], ln m = 2 atanh(s),
// s = (m - 1)/(m + 1), by its series to s^21 (truncation < 1e-18 relative), plus e ln 2 (ln 2 split
// in two parts). Relative error about 2e-16; only IEEE operations and std::fma.
double natural_log(double x);
}  // namespace gaussian_detail

}  // namespace pimqat::pim
