// Bulk thermal noise (pim/kernels/noise.h) against the scalar definition (pim/gaussian.h) on every
// instruction-set path: the same float bits for every conversion index, including partial final
// batches, far block indices (the counter's high word) and the extreme words (u1 = 1 and 2^-24).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
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
    for (std::uint64_t b : {0ull, 5ull, (1ull << 32) + 1, ~0ull >> 2}) {
      const PhiloxBlock block = philox4x32(
          {static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), words->counter_high[0], words->counter_high[1]},
          {words->key[0], words->key[1]});
      EXPECT_EQ(block, stream.block(b)) << "block " << b;
    }
  }
}

TEST(KernelsNoise, BulkNormalsEqualScalarOnEveryPath) {
  const RngKey key{9, 4, Purpose::ThermalNoise, 123};
  const RandomStream stream(key);
  const auto words = PhiloxWords::of(key);
  ASSERT_TRUE(words.has_value());
  // Consecutive, scattered and far block indices; counts that leave partial SIMD batches.
  std::vector<std::uint64_t> blocks;
  for (std::uint64_t b = 0; b < 1000; ++b) blocks.push_back(b);
  RandomStream pick(RngKey{1, 1, Purpose::Operands, 1});
  // (conversion indices are 64-bit: blocks below 2^62)
  for (int i = 0; i < 3000; ++i) blocks.push_back(pick.next_u64() >> (2 + pick.next_u32() % 40));
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
    if (!kernel_isa_supported(isa)) {
      std::printf("[ skipped  ] %s: not supported by this CPU\n", std::string(kernel_isa_name(isa)).c_str());
      continue;
    }
    for (Index count : {Index{1}, Index{7}, Index{16}, Index{17}, static_cast<Index>(blocks.size())}) {
      std::vector<float> out(static_cast<std::size_t>(4 * count) + 1, -99.0f);
      gaussian_blocks(*words, blocks.data(), count, out.data(), isa);
      for (Index i = 0; i < count; ++i)
        for (int k = 0; k < 4; ++k) {
          const float expected = gaussian_at(stream, 4 * blocks[static_cast<std::size_t>(i)] + static_cast<std::uint64_t>(k));
          const float actual = out[static_cast<std::size_t>(4 * i + k)];
          ASSERT_EQ(std::memcmp(&expected, &actual, sizeof expected), 0)
              << kernel_isa_name(isa) << ": block " << blocks[static_cast<std::size_t>(i)] << " normal " << k << ": "
              << actual << " vs " << expected << " (count " << count << ")";
        }
      EXPECT_EQ(out[static_cast<std::size_t>(4 * count)], -99.0f) << "wrote past the end";
    }
    std::printf("[ path     ] %s: %zu blocks checked\n", std::string(kernel_isa_name(isa)).c_str(), blocks.size());
  }
}

TEST(KernelsNoise, ExtremeWordsOfTheTransform) {
  // u1 = 1 (r = 0) and u1 = 2^-24 (largest radius), every quadrant: scan Philox blocks until each
  // case has appeared in the first word of a pair, then compare as above.
  const RngKey key{3, 3, Purpose::ThermalNoise, 3};
  const RandomStream stream(key);
  const auto words = PhiloxWords::of(key);
  std::vector<std::uint64_t> chosen;
  bool quadrant[4] = {};
  for (std::uint64_t b = 0; b < 4096 && chosen.size() < 64; ++b) {
    const PhiloxBlock w = stream.block(b);
    const unsigned q = (w[1] >> 8) >> 22;
    if (!quadrant[q]) {
      quadrant[q] = true;
      chosen.push_back(b);
    }
    if ((w[0] >> 8) >= 0xFFFF00u || (w[0] >> 8) < 0x100u) chosen.push_back(b);
  }
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
    if (!kernel_isa_supported(isa)) continue;
    std::vector<float> out(4 * chosen.size());
    gaussian_blocks(*words, chosen.data(), static_cast<Index>(chosen.size()), out.data(), isa);
    for (std::size_t i = 0; i < chosen.size(); ++i)
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(out[4 * i + static_cast<std::size_t>(k)], gaussian_at(stream, 4 * chosen[i] + static_cast<std::uint64_t>(k)))
            << kernel_isa_name(isa);
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
