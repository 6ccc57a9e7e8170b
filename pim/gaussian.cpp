// The thermal-noise quantile of pim/gaussian.h, out of line and compiled with the build's baseline
// flags, so that the reference (AdcBank::convert) and every kernel path call this one function.
//
// Q(u) is P. J. Acklam's rational approximation of the inverse normal CDF ("An algorithm for
// computing the inverse normal cumulative distribution function", 2003; relative error below
// 1.15e-9): with t = min(u, 1 - u) and p_low = 0.02425,
//   t >= p_low: q = u - 1/2, r = q^2,  Q = q A(r) / B(r)            (A of degree 5, B of degree 5)
//   t <  p_low: q = sqrt(-2 ln t),      Q = -+ C(q) / D(q)          (C of degree 5, D of degree 4,
//                                                                    - for u < 1/2)
// Every polynomial is a Horner chain of explicit std::fma, ln is gaussian_detail::natural_log, and
// nothing else but correctly rounded +, -, *, /, sqrt is used: the bits do not depend on the
// compiler's contraction setting, the instruction set or the C library.
#include "pim/gaussian.h"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/error.h"

namespace pimqat::pim {
namespace {

// Acklam's coefficients.
constexpr double kA[6] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                          1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
constexpr double kB[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                          -1.328068155288572e+01};
constexpr double kC[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                          -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
// c[0] x^(N-1) + c[1] x^(N-2) + ... + c[N-1] by Horner's rule, one explicit fused multiply-add per
// coefficient (the bits do not depend on the compiler's contraction settings).
template <std::size_t N>
double horner(const double (&c)[N], double x) {
  double v = c[0];
  for (std::size_t i = 1; i < N; ++i) v = std::fma(v, x, c[i]);
  return v;
}

// 1/21, 1/19, ..., 1/3: the atanh series of natural_log, highest power first.
constexpr double kAtanhSeries[10] = {1.0 / 21.0, 1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0,
                                     1.0 / 11.0, 1.0 / 9.0,  1.0 / 7.0,  1.0 / 5.0,  1.0 / 3.0};

constexpr double kD[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
constexpr double kLowRegion = 0.02425;

// ln 2 = kLn2High + kLn2Low, kLn2High with 32 significant bits (so e kLn2High is exact for |e| < 2^21).
constexpr double kLn2High = 6.93147180369123816490e-01;
constexpr double kLn2Low = 1.90821492927058770002e-10;
constexpr double kSqrt2 = 1.41421356237309504880;

struct Edges {
  float e[kThermalBuckets + 1];
  Edges() {
    e[0] = -std::numeric_limits<float>::infinity();
    e[kThermalBuckets] = std::numeric_limits<float>::infinity();
    for (int i = 1; i < kThermalBuckets; ++i)
      e[i] = static_cast<float>(normal_quantile(static_cast<double>(i) / kThermalBuckets));
  }
};

}  // namespace

namespace gaussian_detail {

double natural_log(double x) {
  const auto bits = std::bit_cast<std::uint64_t>(x);
  int exponent = static_cast<int>(bits >> 52) - 1023;
  double m = std::bit_cast<double>((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  if (m > kSqrt2) {
    m *= 0.5;
    exponent += 1;
  }
  // ln m = 2 atanh s = 2 s + 2 s^3 (1/3 + s^2/5 + ... + s^18/21), |s| <= 0.1716; m - 1 is exact.
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  const double p = horner(kAtanhSeries, s2);
  const double two_s = s + s;
  const double ln_m = std::fma(two_s * s2, p, two_s);
  const auto e = static_cast<double>(exponent);
  return std::fma(e, kLn2High, std::fma(e, kLn2Low, ln_m));
}

}  // namespace gaussian_detail

double normal_quantile(double u) {
  PIMQAT_ASSERT(u > 0.0 && u < 1.0);
  const double t = u < 0.5 ? u : 1.0 - u;
  if (t >= kLowRegion) {
    const double q = u - 0.5;
    const double r = q * q;
    const double a = horner(kA, r);
    const double b = std::fma(horner(kB, r), r, 1.0);
    return a * q / b;
  }
  const double q = std::sqrt(-2.0 * gaussian_detail::natural_log(t));
  const double c = horner(kC, q);
  const double d = std::fma(horner(kD, q), q, 1.0);
  const double z = c / d;  // the lower tail: negative
  return u < 0.5 ? z : -z;
}

double thermal_normal_at(const RandomStream& stream, std::uint64_t j) {
  const std::uint32_t coarse = thermal_coarse(stream.block(thermal_coarse_block(j)), j);
  const std::uint32_t fine = thermal_fine(stream.block(thermal_fine_block(j)), j);
  return thermal_normal(coarse, fine);
}

const float* thermal_bucket_edges() {
  static const Edges edges;
  return edges.e;
}

}  // namespace pimqat::pim
