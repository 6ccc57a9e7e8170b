// Philox4x32-10 known answers (Random123 distribution, kat_vectors) and the statistical and
// bookkeeping properties of RandomStream.
#include "core/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace pimqat {
namespace {

TEST(Philox, KnownAnswerVectors) {
  EXPECT_EQ(philox4x32({0, 0, 0, 0}, {0, 0}), (PhiloxBlock{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (PhiloxBlock{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (PhiloxBlock{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

const RngKey kKey{12345, 678, Purpose::Synthetic, 9};

TEST(RandomStream, WordsAreTheBlocksInOrder) {
  RandomStream stream(kKey);
  const RandomStream reference(kKey);
  for (std::uint64_t b = 0; b < 10; ++b) {
    const PhiloxBlock block = reference.block(b);
    for (int w = 0; w < 4; ++w) ASSERT_EQ(stream.next_u32(), block[static_cast<std::size_t>(w)]);
  }
  EXPECT_EQ(stream.position(), 40u);
}

TEST(RandomStream, SeekAndPositionRoundTrip) {
  RandomStream a(kKey);
  for (int i = 0; i < 7; ++i) a.next_u32();  // mid-block
  const std::uint64_t saved = a.position();
  EXPECT_EQ(saved, 7u);
  std::vector<std::uint32_t> expected;
  for (int i = 0; i < 13; ++i) expected.push_back(a.next_u32());
  RandomStream b(kKey);
  b.seek(saved);
  for (int i = 0; i < 13; ++i) ASSERT_EQ(b.next_u32(), expected[static_cast<std::size_t>(i)]);
  // Seeking back on the same stream repeats the words, also after other draws.
  a.seek(saved);
  EXPECT_EQ(a.next_u32(), expected[0]);
  a.seek(1000003);
  const std::uint32_t far = a.next_u32();
  EXPECT_EQ(far, RandomStream(kKey).block(1000003 / 4)[1000003 % 4]);
  // next_u64 consumes two words, low word first.
  RandomStream c(kKey);
  const std::uint64_t v = c.next_u64();
  EXPECT_EQ(c.position(), 2u);
  EXPECT_EQ(static_cast<std::uint32_t>(v), RandomStream(kKey).block(0)[0]);
  EXPECT_EQ(static_cast<std::uint32_t>(v >> 32), RandomStream(kKey).block(0)[1]);
}

TEST(RandomStream, StreamsOfDifferentKeysAreIndependent) {
  const std::vector<RngKey> keys = {
      kKey,
      {kKey.seed + 1, kKey.task, kKey.purpose, kKey.index},
      {kKey.seed, kKey.task + 1, kKey.purpose, kKey.index},
      kKey.with(Purpose::ThermalNoise, kKey.index),
      kKey.with(kKey.purpose, kKey.index + 1),
      {kKey.task, kKey.seed, kKey.purpose, kKey.index},  // seed and task swapped
  };
  constexpr int kSamples = 20000;
  std::vector<std::vector<double>> draws;
  for (const auto& key : keys) {
    RandomStream s(key);
    std::vector<double> x(kSamples);
    for (auto& v : x) v = s.uniform_double() - 0.5;
    draws.push_back(std::move(x));
  }
  for (std::size_t a = 0; a < keys.size(); ++a)
    for (std::size_t b = a + 1; b < keys.size(); ++b) {
      ASSERT_NE(draws[a][0], draws[b][0]) << a << " " << b;
      // Sample correlation of independent uniforms: standard error 1/sqrt(n) ~ 0.007.
      double sab = 0.0, saa = 0.0, sbb = 0.0;
      for (int i = 0; i < kSamples; ++i) {
        sab += draws[a][static_cast<std::size_t>(i)] * draws[b][static_cast<std::size_t>(i)];
        saa += draws[a][static_cast<std::size_t>(i)] * draws[a][static_cast<std::size_t>(i)];
        sbb += draws[b][static_cast<std::size_t>(i)] * draws[b][static_cast<std::size_t>(i)];
      }
      EXPECT_LT(std::abs(sab / std::sqrt(saa * sbb)), 0.04) << a << " " << b;
    }
}

TEST(RandomStream, UniformMoments) {
  RandomStream s(kKey);
  constexpr int kSamples = 200000;
  double sum = 0.0, sum2 = 0.0, sumd = 0.0, sumd2 = 0.0;
  for (int i = 0; i < kSamples; ++i) {
    const float u = s.uniform();
    ASSERT_GT(u, 0.0f);
    ASSERT_LE(u, 1.0f);
    sum += u;
    sum2 += static_cast<double>(u) * u;
    const double d = s.uniform_double();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    sumd += d;
    sumd2 += d * d;
  }
  // Mean 1/2 (standard error 0.00065), variance 1/12.
  EXPECT_NEAR(sum / kSamples, 0.5, 0.004);
  EXPECT_NEAR(sum2 / kSamples - (sum / kSamples) * (sum / kSamples), 1.0 / 12.0, 0.002);
  EXPECT_NEAR(sumd / kSamples, 0.5, 0.004);
  EXPECT_NEAR(sumd2 / kSamples - (sumd / kSamples) * (sumd / kSamples), 1.0 / 12.0, 0.002);
  // Extremes of the bit mapping.
  EXPECT_EQ(uniform_from_bits(0u), 1.0f / 16777216.0f);
  EXPECT_EQ(uniform_from_bits(0xffffffffu), 1.0f);
}

TEST(RandomStream, NormalMoments) {
  RandomStream s(kKey.with(Purpose::ThermalNoise, 3));
  constexpr int kSamples = 200000;
  double m1 = 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0;
  int beyond2 = 0;
  for (int i = 0; i < kSamples; ++i) {
    const double x = s.normal();
    ASSERT_TRUE(std::isfinite(x));
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
    beyond2 += std::abs(x) > 2.0;
  }
  m1 /= kSamples;
  m2 /= kSamples;
  m3 /= kSamples;
  m4 /= kSamples;
  EXPECT_NEAR(m1, 0.0, 0.01);   // standard error 0.0022
  EXPECT_NEAR(m2, 1.0, 0.015);  // standard error 0.0032
  EXPECT_NEAR(m3, 0.0, 0.03);
  EXPECT_NEAR(m4, 3.0, 0.08);
  EXPECT_NEAR(static_cast<double>(beyond2) / kSamples, 0.0455, 0.003);  // P(|X| > 2)
}

TEST(RandomStream, BelowIsInRangeAndUniform) {
  RandomStream s(kKey);
  for (std::uint32_t n : {1u, 2u, 3u, 7u, 10u, 1000u, 0x80000001u, 0xffffffffu}) {
    for (int i = 0; i < 1000; ++i) ASSERT_LT(s.below(n), n) << n;
  }
  // Chi-square over 7 cells: 6 degrees of freedom, P(chi2 > 22.46) = 0.001.
  constexpr int kSamples = 70000;
  std::vector<int> counts(7, 0);
  for (int i = 0; i < kSamples; ++i) ++counts[s.below(7)];
  double chi2 = 0.0;
  for (int c : counts) chi2 += (c - kSamples / 7.0) * (c - kSamples / 7.0) / (kSamples / 7.0);
  EXPECT_LT(chi2, 22.46);
  // A bound just above 2^31 is where a plain modulo would be most biased: the upper half
  // of [0, n) would get half the mass it should.
  std::uint64_t upper = 0;
  for (int i = 0; i < 20000; ++i) upper += s.below(0xC0000000u) >= 0x80000000u;
  EXPECT_NEAR(static_cast<double>(upper) / 20000, 1.0 / 3.0, 0.015);
}

TEST(RandomStream, ShuffleIsAPermutationAndDeterministic) {
  for (std::uint32_t n : {0u, 1u, 2u, 17u, 1000u}) {
    std::vector<std::uint32_t> a(n), b(n);
    std::iota(a.begin(), a.end(), 0u);
    std::iota(b.begin(), b.end(), 0u);
    RandomStream sa(kKey.with(Purpose::DataOrder, 4)), sb(kKey.with(Purpose::DataOrder, 4));
    shuffle_indices(a.data(), n, sa);
    shuffle_indices(b.data(), n, sb);
    EXPECT_EQ(a, b);
    std::vector<std::uint32_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
    if (n == 1000) {
      std::uint32_t fixed_points = 0;
      for (std::uint32_t i = 0; i < n; ++i) fixed_points += a[i] == i;
      EXPECT_LT(fixed_points, 10u);  // expected 1 for a uniform permutation
    }
  }
  // Each of the 6 permutations of 3 elements is equally likely.
  RandomStream s(kKey);
  std::vector<int> counts(6, 0);
  for (int t = 0; t < 6000; ++t) {
    std::uint32_t p[3] = {0, 1, 2};
    shuffle_indices(p, 3, s);
    ++counts[static_cast<std::size_t>(p[0] * 2 + (p[1] > p[2] ? 1 : 0))];
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 120);
}

}  // namespace
}  // namespace pimqat
