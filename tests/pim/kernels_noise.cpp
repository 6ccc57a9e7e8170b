// The kernels' thermal noise (pim/kernels/noise.h) against the definition (pim/gaussian.h,
// AdcBank::convert's formula) on every instruction-set path: the fast decision's codes equal the
// exact codes for every conversion, at noise levels from far below one LSB (almost every bucket
// decides) to far above the code range (almost none does), levels on and next to the code
// thresholds, runs that start off the 8-conversion blocks and end in partial vectors, and far
// conversion indices; the fine word must have been drawn where the buckets straddle.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/rng.h"
#include "pim/adc.h"
#include "pim/die.h"
#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/noise.h"

namespace pimqat::pim {
namespace {

TEST(KernelsNoise, PhiloxWordsReproduceTheStream) {
  for (const RngKey& key : {RngKey{1, 2, Purpose::ThermalNoise, 3}, RngKey{~0ull, 77, Purpose::ThermalNoise, 1ull << 50},
                            RngKey{0, 0, Purpose::Synthetic, 0}}) {
    const auto words = PhiloxWords::of(key);
    ASSERT_TRUE(words.has_value()) << "the Philox words of a stream no longer follow core/rng.cpp's derivation";
    const RandomStream stream(key);
    for (std::uint64_t b : {0ull, 5ull, (1ull << 32) + 1, ~0ull >> 2, (1ull << 63) | 12345ull}) {
      const PhiloxBlock block = philox4x32(
          {static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), words->counter_high[0], words->counter_high[1]},
          {words->key[0], words->key[1]});
      EXPECT_EQ(block, stream.block(b)) << "block " << b;
      EXPECT_EQ(philox_block(*words, b), block) << "block " << b;
    }
  }
}

std::vector<KernelIsa> available_paths() {
  std::vector<KernelIsa> paths;
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
    if (kernel_isa_supported(isa))
      paths.push_back(isa);
    else
      std::printf("[ skipped  ] %s: not supported by this CPU\n", std::string(kernel_isa_name(isa)).c_str());
  }
  return paths;
}

TEST(KernelsNoise, FastDecisionEqualsTheDefinitionOnEveryPath) {
  const RngKey key{9, 4, Purpose::ThermalNoise, 123};
  const RandomStream stream(key);
  const auto words = PhiloxWords::of(key);
  ASSERT_TRUE(words.has_value());
  // A 7-bit ADC and a 16-bit one (where sigma = 1e4 LSB puts a code threshold in almost every
  // bucket of the noise's bulk: most conversions take the fine word).
  const Adc adcs[] = {Adc(0.0, 144.0, 7), Adc(0.0, 65535.0, 16)};
  RandomStream pick(RngKey{1, 1, Purpose::Operands, 1});
  struct Run {
    std::uint64_t j0;
    Index count;
  };
  // Aligned, unaligned, partial vectors, far indices (the counter's high word).
  const Run runs[] = {{0, 2048}, {3, 1001}, {13, 7}, {(1ull << 40) + 5, 333}, {(1ull << 60) + 7, 64}};
  const double sigmas[] = {1e-4, 0.3, 1.0, 2.5, 40.0, 1e4, 1e6};
  for (KernelIsa isa : available_paths()) {
    std::uint64_t total = 0, fine = 0, dense_total = 0, dense_fine = 0;
    for (const Adc& adc : adcs)
      for (const double sigma : sigmas)
        for (const Run& run : runs) {
          // Levels: uniform over the code range and beyond, exact half-integers (thresholds), and
          // within 1e-9 of them.
          const double top = adc.max_code() + 1.0;
          std::vector<double> levels(static_cast<std::size_t>(run.count));
          for (std::size_t i = 0; i < levels.size(); ++i) {
            const double u = pick.uniform_double();
            switch (i % 4) {
              case 0:
                levels[i] = -5.0 + (top + 10.0) * u;
                break;
              case 1:
                levels[i] = std::floor(top * u) + 0.5;
                break;
              case 2:
                levels[i] = std::floor(top * u) + 0.5 + (u < 0.5 ? 1e-9 : -1e-9);
                break;
              default:
                levels[i] = top / 2 - 1.0 + 2.0 * u;
                break;
            }
          }
          std::vector<std::int32_t> codes(levels.size() + 1, -7);
          const std::uint64_t drawn =
              thermal_codes(*words, run.j0, run.count, sigma, adc, levels.data(), codes.data(), isa);
          for (Index i = 0; i < run.count; ++i) {
            const std::uint64_t j = run.j0 + static_cast<std::uint64_t>(i);
            const int expected =
                adc.code(std::fma(sigma, thermal_normal_at(stream, j), levels[static_cast<std::size_t>(i)]));
            ASSERT_EQ(codes[static_cast<std::size_t>(i)], expected)
                << kernel_isa_name(isa) << ": " << adc.bits() << "-bit ADC, sigma " << sigma << ", conversion " << j
                << ", level " << levels[static_cast<std::size_t>(i)];
          }
          EXPECT_EQ(codes.back(), -7) << "wrote past the end";
          total += static_cast<std::uint64_t>(run.count);
          fine += drawn;
          if (adc.bits() == 16 && sigma == 1e4) {
            dense_total += static_cast<std::uint64_t>(run.count);
            dense_fine += drawn;
          }
        }
    EXPECT_GT(dense_fine, dense_total / 2) << kernel_isa_name(isa);
    EXPECT_LT(fine, total / 2) << kernel_isa_name(isa);
    std::printf("[ path     ] %s: %llu conversions equal the definition, %llu fine words drawn\n",
                std::string(kernel_isa_name(isa)).c_str(), static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(fine));
  }
}

TEST(KernelsNoise, SmallNoiseRarelyNeedsTheFineWord) {
  // sigma = 1 LSB on levels spread over the code range: about (thresholds within the noise's range,
  // here ~8) / 4096 of the conversions straddle, plus the two outermost buckets.
  const auto words = PhiloxWords::of(RngKey{2, 2, Purpose::ThermalNoise, 2});
  const Adc adc(0.0, 144.0, 7);
  const Index n = 1 << 16;
  std::vector<double> levels(static_cast<std::size_t>(n));
  RandomStream pick(RngKey{2, 1, Purpose::Operands, 1});
  for (auto& l : levels) l = 10.0 + 100.0 * pick.uniform_double();
  std::vector<std::int32_t> codes(static_cast<std::size_t>(n));
  for (KernelIsa isa : available_paths()) {
    const std::uint64_t fine = thermal_codes(*words, 0, n, 1.0, adc, levels.data(), codes.data(), isa);
    const double fraction = static_cast<double>(fine) / static_cast<double>(n);
    EXPECT_GT(fraction, 0.0005) << kernel_isa_name(isa);
    EXPECT_LT(fraction, 0.01) << kernel_isa_name(isa);
    std::printf("[ fraction ] %s: sigma = 1 LSB: %.3f%% of conversions drew the fine word\n",
                std::string(kernel_isa_name(isa)).c_str(), 100.0 * fraction);
  }
}

TEST(KernelsNoise, DieBanksCarryTheWordsAndStreamOnlyBanksDoNot) {
  NonIdeality settings;
  settings.noise_sigma = 1.0;
  const Die die(1, 2, 3, settings);
  AdcBank bank(Adc(0.0, 144.0, 7));
  die.set_noise(bank, 4, 5);
  ASSERT_TRUE(bank.noise_words().has_value());
  const RandomStream& stream = bank.noise_stream();
  const RandomStream expected = die.noise_stream(4, 5);
  EXPECT_EQ(stream.block(17), expected.block(17));
  bank.set_noise(1.0, RandomStream(RngKey{1, 1, Purpose::ThermalNoise, 1}));
  EXPECT_FALSE(bank.noise_words().has_value());  // the fast kernels then use RandomStream::block
}

}  // namespace
}  // namespace pimqat::pim
