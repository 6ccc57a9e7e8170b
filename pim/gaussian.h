#pragma once
// Standard normal numbers from counter-based random bits (DESIGN.md 2.6), defined so that a SIMD
// kernel can reproduce them bit for bit (issue 4).
//
// gaussian_pair(a, b) is the Box-Muller transform of two 32-bit words:
//   u1 = ((a >> 8) + 1) / 2^24 in (0, 1],   v = b >> 8 in [0, 2^24),   theta = 2 pi v / 2^24
//   r  = sqrt(-2 ln u1),   (z0, z1) = (r cos theta, r sin theta)
// ln and (cos, sin) are evaluated with fixed polynomials in single precision using only
// correctly rounded IEEE-754 operations (+, -, *, /, sqrt), explicit fused multiply-adds
// (std::fma) and exact integer/bit manipulations; a vector version that performs the same
// operations in the same order returns identical bits. Absolute error of z against the exact
// transform of the same (u1, theta): below 2e-6. |z| <= sqrt(2 ln 2^24) = 5.77 (the tails beyond
// 5.77 sigma are cut; their probability is 8e-9).
//
// Addressing: conversion (or draw) j of a stream uses block j / 4 of the Philox stream, words
// (2k, 2k+1) with k = (j / 2) % 2, and takes z0 for even j and z1 for odd j. So the j-th normal is a
// pure function of (stream key, j): any order, any thread, any kernel gives the same number.
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/rng.h"

namespace pimqat::pim {

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

// The j-th standard normal of a stream (see the addressing rule above).
inline float gaussian_at(const RandomStream& stream, std::uint64_t j) {
  const PhiloxBlock block = stream.block(j >> 2);
  const unsigned k = static_cast<unsigned>((j >> 1) & 1u);
  const GaussianPair pair = gaussian_pair(block[2 * k], block[2 * k + 1]);
  return (j & 1u) ? pair.z1 : pair.z0;
}

}  // namespace pimqat::pim
