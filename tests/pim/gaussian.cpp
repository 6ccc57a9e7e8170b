// Tests of pim/gaussian.h: the polynomial Box-Muller against the exact transform of the same
// bits (in double), its moments, and the addressing rule.
#include "pim/gaussian.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

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

TEST(Gaussian, MomentsOfTheAddressedStream) {
  const RandomStream stream(RngKey{5, 3, Purpose::ThermalNoise, 9});
  const int n = 400000;
  double s1 = 0, s2 = 0, s4 = 0, s_odd_even = 0;
  float previous = 0;
  for (int j = 0; j < n; ++j) {
    const double z = gaussian_at(stream, static_cast<std::uint64_t>(j));
    s1 += z;
    s2 += z * z;
    s4 += z * z * z * z;
    if (j & 1) s_odd_even += z * previous;  // z0 and z1 of one pair are uncorrelated
    previous = static_cast<float>(z);
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 0.06);
  EXPECT_NEAR(s_odd_even / (n / 2), 0.0, 5.0 / std::sqrt(n / 2));
}

TEST(Gaussian, AddressingRule) {
  const RandomStream stream(RngKey{1, 2, Purpose::ThermalNoise, 3});
  for (std::uint64_t j : {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, (1ull << 35) + 6}) {
    const PhiloxBlock block = stream.block(j / 4);
    const unsigned k = static_cast<unsigned>((j / 2) % 2);
    const GaussianPair pair = gaussian_pair(block[2 * k], block[2 * k + 1]);
    EXPECT_EQ(gaussian_at(stream, j), j % 2 ? pair.z1 : pair.z0) << "j = " << j;
  }
}

}  // namespace
}  // namespace pimqat::pim
