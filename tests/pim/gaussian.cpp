// Tests of pim/gaussian.h: the polynomial Box-Muller (die parameters) against the exact transform
// of the same bits; the thermal-noise quantile Q against the normal CDF (std::erfc, an independent
// reference), its own logarithm against std::log, its pinned bits, the bucket bounds of the fast
// decision on every bucket edge, both tails and millions of seeded (coarse, fine) pairs, the
// addressing rule, and the distribution of the noise of a stream with tolerances from the sample
// size.
#include "pim/gaussian.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <vector>

namespace pimqat::pim {
namespace {

TEST(Gaussian, MatchesExactBoxMullerOfTheSameBits) {
  RandomStream bits(RngKey{11, 0, Purpose::Synthetic, 0});
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t a = bits.next_u32(), b = bits.next_u32();
    if (i == 0) a = 0xFFFFFFFFu;  // u1 = 1: r = 0
    if (i == 1) a = 0;            // u1 = 2^-24: the largest radius
    const GaussianPair z = gaussian_pair(a, b);
    const double u1 = (static_cast<double>(a >> 8) + 1.0) / 16777216.0;
    const double theta = 2.0 * std::numbers::pi * static_cast<double>(b >> 8) / 16777216.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    worst = std::max(worst, std::abs(z.z0 - r * std::cos(theta)));
    worst = std::max(worst, std::abs(z.z1 - r * std::sin(theta)));
  }
  EXPECT_LT(worst, 2e-6);
}

TEST(Gaussian, BoxMullerPairsOfAStreamHaveNormalMoments) {
  const RandomStream stream(RngKey{5, 3, Purpose::DieParameters, 9});
  const int pairs = 200000;
  double s1 = 0, s2 = 0, s4 = 0, cross = 0;
  for (int b = 0; b < pairs; ++b) {
    const PhiloxBlock block = stream.block(static_cast<std::uint64_t>(b));
    const GaussianPair z = gaussian_pair(block[0], block[1]);
    for (const double v : {static_cast<double>(z.z0), static_cast<double>(z.z1)}) {
      s1 += v;
      s2 += v * v;
      s4 += v * v * v * v;
    }
    cross += static_cast<double>(z.z0) * z.z1;  // z0 and z1 of one pair are uncorrelated
  }
  const double n = 2.0 * pairs, mean = s1 / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));  // var(z^4) = 105 - 9
  EXPECT_NEAR(cross / pairs, 0.0, 5.0 / std::sqrt(pairs));
}

// ---------------------------------------------------------------------------------------------
// Thermal noise.

// Phi(z) = erfc(-z / sqrt 2) / 2 (relative accuracy near 1e-16 for z < 0).
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// The exact quantile to about 1e-15 relative: Newton steps on Phi(z) = u from Q(u), on the lower
// half (u < 1/2, where Phi(z) is accurate relative to u), mirrored for the upper half.
double reference_quantile(double u) {
  if (u > 0.5) return -reference_quantile(1.0 - u);
  double z = normal_quantile(u);
  for (int k = 0; k < 3; ++k) {
    const double density = std::exp(-0.5 * z * z) / std::sqrt(2.0 * std::numbers::pi);
    z -= (normal_cdf(z) - u) / density;
  }
  return z;
}

TEST(ThermalNoise, NaturalLogMatchesStdLog) {
  RandomStream bits(RngKey{1, 0, Purpose::Synthetic, 1});
  double worst = 0;
  std::vector<double> xs = {0x1p-41,
                            0x1p-40 * 3,
                            0.02425,
                            0.5,
                            0.70710678118654752,
                            0.70710678118654757,
                            1.0 - 0x1p-41,
                            1.0,
                            1.41421356237309504,
                            1.5,
                            2.0,
                            1e300,
                            1e-300};
  for (int i = 0; i < 200000; ++i)
    xs.push_back(std::ldexp(1.0 + bits.uniform_double(), static_cast<int>(bits.below(90)) - 60));
  for (const double x : xs) {
    const double expected = std::log(x), actual = gaussian_detail::natural_log(x);
    if (expected == 0.0) {
      EXPECT_EQ(actual, 0.0) << x;
      continue;
    }
    worst = std::max(worst, std::abs(actual - expected) / std::abs(expected));
  }
  // |ln x| >= 2^-53-ish only at x = 1 - 2^-41 and near 1, where the absolute error still counts:
  EXPECT_LT(worst, 1e-14);
  std::printf("[ accuracy ] natural_log: worst relative error %.3g over %zu values\n", worst, xs.size());
}

TEST(ThermalNoise, QuantileMatchesTheNormalCdfToAcklamsBound) {
  // Both tails down to U = 2^-41 (the smallest U of the definition), the region boundary
  // p_low = 0.02425, the centre, and a uniform sweep.
  std::vector<double> us;
  for (int e = 41; e >= 2; --e)
    for (const double m : {1.0, 1.2345, 1.5, 1.99}) us.push_back(std::ldexp(m, -e));
  for (const double u : {0.02425 - 1e-12, 0.02425, 0.02425 + 1e-12, 0.3, 0.4999, 0.5 - 0x1p-41}) us.push_back(u);
  for (int i = 1; i < 100000; ++i) us.push_back(i / 100000.0);
  const std::size_t lower = us.size();
  for (std::size_t i = 0; i < lower; ++i) us.push_back(1.0 - us[i]);
  double worst = 0;
  for (const double u : us) {
    const double z = normal_quantile(u), expected = reference_quantile(u);
    const double error = std::abs(z - expected) / std::max(std::abs(expected), 1e-300);
    worst = std::max(worst, error);
    ASSERT_LT(std::abs(z - expected), 1.15e-9 * std::abs(expected) + 1e-15) << "u = " << u;
  }
  std::printf("[ accuracy ] normal_quantile: worst relative error %.3g over %zu points (bound 1.15e-9)\n", worst,
              us.size());
  EXPECT_EQ(normal_quantile(0.5), 0.0);
  EXPECT_LT(normal_quantile(0x1p-41), -7.0);
  EXPECT_GT(normal_quantile(0x1p-41), -7.2);
}

TEST(ThermalNoise, QuantileIsExactlyAntisymmetricOnTheDefinitionsGrid) {
  RandomStream bits(RngKey{2, 0, Purpose::Synthetic, 2});
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t c = bits.next_u32() & 0xFFFFu, f = bits.next_u32() >> 8;
    const double u = thermal_uniform(c, f);
    // 1 - U is U of (2^16 - 1 - c, 2^24 - 1 - f): exact.
    ASSERT_EQ(1.0 - u, thermal_uniform(0xFFFFu - c, 0xFFFFFFu - f));
    ASSERT_EQ(thermal_normal(c, f), -thermal_normal(0xFFFFu - c, 0xFFFFFFu - f)) << c << " " << f;
  }
}

// The definition's bits on every machine: a change here changes every noisy evaluation (and then
// the noise-model version in the runner's task identities must change with it).
TEST(ThermalNoise, PinnedBits) {
  struct Golden {
    std::uint32_t coarse, fine;
    std::uint64_t bits;
  };
  // (The same bits from GCC -O0 without FMA instructions, GCC -O2 -march=native and clang -O2
  // -march=native -ffp-contract=fast.) f = 4160749 / 4160750 at c = 1589 put U on either side of
  // Acklam's region boundary 0.02425.
  const Golden golden[] = {
      {0, 0, 0xc01c92ff4d6dc19cull},             // -7.143552026580803 (the smallest U, 2^-41)
      {0, 0xFFFFFF, 0xc010ada3952574beull},      // -4.1695693306075423
      {1589, 4160749, 0xbfff913f9c133ac4ull},    // -1.972961053532047 (tail formula)
      {1589, 4160750, 0xbfff913f9ae09a2full},    // -1.9729610490700329 (central formula)
      {12345, 678901, 0xbfec490d66c0e92dull},    // -0.88391752308897298
      {32767, 0xFFFFFF, 0xbd740d9320575479ull},  // -1.1398825688316898e-12
      {32768, 0, 0x3d740d9320575479ull},         // 1.1398825688316898e-12
      {65535, 0xFFFFFF, 0x401c92ff4d6dc19cull},  // 7.143552026580803
  };

  for (const Golden& g : golden)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(thermal_normal(g.coarse, g.fine)), g.bits)
        << "c = " << g.coarse << ", f = " << g.fine << ": z = " << thermal_normal(g.coarse, g.fine);
}

// E[b] - m <= Q(U) <= E[b+1] + m (in double, the operations the kernels use) for U of bucket b.
::testing::AssertionResult inside_bucket(std::uint32_t c, std::uint32_t f) {
  const float* edges = thermal_bucket_edges();
  const std::uint32_t b = c >> kThermalCoarseShift;
  const double lo = static_cast<double>(edges[b]) - kThermalBucketMargin;
  const double hi = static_cast<double>(edges[b + 1]) + kThermalBucketMargin;
  const double z = thermal_normal(c, f);
  if (lo <= z && z <= hi) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "c = " << c << ", f = " << f << ": z = " << z << " outside [" << lo << ", "
                                       << hi << "] of bucket " << b;
}

TEST(ThermalNoise, BucketEdgeTable) {
  const float* edges = thermal_bucket_edges();
  EXPECT_EQ(edges[0], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(edges[kThermalBuckets], std::numeric_limits<float>::infinity());
  EXPECT_EQ(edges[kThermalBuckets / 2], 0.0f);
  for (int i = 1; i < kThermalBuckets; ++i) {
    ASSERT_LT(edges[i - 1], edges[i]) << i;
    ASSERT_EQ(edges[i], -edges[kThermalBuckets - i]) << i;
    ASSERT_NEAR(edges[i], reference_quantile(i / 4096.0), 3e-7) << i;
  }
}

TEST(ThermalNoise, EveryUOfABucketLiesWithinItsBounds) {
  std::uint64_t checked = 0;
  // Both extreme U of every bucket (the bounds of a monotone Q), and their neighbours.
  for (std::uint32_t b = 0; b < kThermalBuckets; ++b) {
    const std::uint32_t first = b << kThermalCoarseShift, last = first + (1u << kThermalCoarseShift) - 1;
    for (const std::uint32_t f : {0u, 1u, 2u, 0x800000u}) ASSERT_TRUE(inside_bucket(first, f));
    for (const std::uint32_t f : {0xFFFFFFu, 0xFFFFFEu, 0xFFFFFDu, 0x7FFFFFu}) ASSERT_TRUE(inside_bucket(last, f));
    checked += 8;
  }
  // Acklam's region boundary p_low = 0.02425 (c = 1589, f near 2^22) and its mirror, densely:
  // the only place where the approximation's two formulas meet.
  for (const std::uint32_t c : {1588u, 1589u, 1590u, 65535u - 1588u, 65535u - 1589u, 65535u - 1590u})
    for (std::uint32_t f = 0; f < (1u << 24); f += 509) {
      ASSERT_TRUE(inside_bucket(c, f));
      ++checked;
    }
  // Both tails: the 16 coarse values of the first and last buckets with many fine words.
  for (std::uint32_t c = 0; c < 16; ++c)
    for (std::uint32_t f = 0; f < (1u << 24); f += 65521) {
      ASSERT_TRUE(inside_bucket(c, f));
      ASSERT_TRUE(inside_bucket(0xFFFFu - c, f));
      checked += 2;
    }
  // Seeded pairs.
  RandomStream bits(RngKey{3, 0, Purpose::Synthetic, 3});
  for (int i = 0; i < 3000000; ++i) {
    const std::uint32_t w = bits.next_u32();
    ASSERT_TRUE(inside_bucket(w & 0xFFFFu, bits.next_u32() >> 8));
    ++checked;
  }
  std::printf("[ bounds   ] %llu (coarse, fine) pairs inside their bucket's bounds\n",
              static_cast<unsigned long long>(checked));
}

TEST(ThermalNoise, AddressingRule) {
  const RandomStream stream(RngKey{1, 2, Purpose::ThermalNoise, 3});
  for (const std::uint64_t j : {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, 8ull, 13ull, (1ull << 35) + 6, (1ull << 61) - 1}) {
    const PhiloxBlock coarse_block = stream.block(j / 8), fine_block = stream.block((1ull << 63) + j / 4);
    const std::uint32_t word = coarse_block[(j / 2) % 4];
    const std::uint32_t coarse = j % 2 == 0 ? word & 0xFFFFu : word >> 16;
    const std::uint32_t fine = fine_block[j % 4] >> 8;
    EXPECT_EQ(thermal_coarse(stream.block(thermal_coarse_block(j)), j), coarse) << j;
    EXPECT_EQ(thermal_fine(stream.block(thermal_fine_block(j)), j), fine) << j;
    const double u = (coarse + (fine + 0.5) / 16777216.0) / 65536.0;
    EXPECT_EQ(thermal_uniform(coarse, fine), u) << j;
    EXPECT_EQ(thermal_normal_at(stream, j), normal_quantile(u)) << j;
  }
}

TEST(ThermalNoise, NoiseOfAStreamIsStandardNormal) {
  const RandomStream stream(RngKey{5, 3, Purpose::ThermalNoise, 9});
  const int n = 1 << 21;
  double s1 = 0, s2 = 0, s4 = 0, lag = 0, previous = 0;
  const double quantiles[] = {-2.326347874040841, -1.281551565544601, -0.674489750196082, 0.0,
                              0.674489750196082,  1.281551565544601,  2.326347874040841};
  const double levels[] = {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99};
  std::int64_t below[7] = {}, beyond3 = 0, beyond4 = 0;
  double largest = 0;
  for (int j = 0; j < n; ++j) {
    const double z = thermal_normal_at(stream, static_cast<std::uint64_t>(j));
    s1 += z;
    s2 += z * z;
    s4 += z * z * z * z;
    lag += z * previous;
    previous = z;
    for (int k = 0; k < 7; ++k) below[k] += z < quantiles[k];
    beyond3 += std::abs(z) > 3.0;
    beyond4 += std::abs(z) > 4.0;
    largest = std::max(largest, std::abs(z));
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  // 5 standard errors of each estimate at this sample size.
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));
  EXPECT_NEAR(lag / (n - 1), 0.0, 5.0 / std::sqrt(n));  // neighbours share a Philox word
  for (int k = 0; k < 7; ++k)
    EXPECT_NEAR(static_cast<double>(below[k]) / n, levels[k], 5.0 * std::sqrt(levels[k] * (1 - levels[k]) / n))
        << "P(z < " << quantiles[k] << ")";
  const double p3 = 2.0 * normal_cdf(-3.0), p4 = 2.0 * normal_cdf(-4.0);
  EXPECT_NEAR(static_cast<double>(beyond3), p3 * n, 5.0 * std::sqrt(p3 * n));
  EXPECT_NEAR(static_cast<double>(beyond4), p4 * n, 5.0 * std::sqrt(p4 * n));
  std::printf(
      "[ noise    ] n = %d: mean %.5f, var %.5f, |z| > 3: %lld (expected %.1f), |z| > 4: %lld (expected %.1f), "
      "max |z| %.3f\n",
      n, mean, var, static_cast<long long>(beyond3), p3 * n, static_cast<long long>(beyond4), p4 * n, largest);
}

}  // namespace
}  // namespace pimqat::pim
