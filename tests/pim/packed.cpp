// Tests of pim/kernels/packed.h against the reference kernel (the oracle): bit-identical y~ and
// exact products on a seeded grid of schemes, row counts (including 64-bit word boundaries and
// odd values), bit widths, ADC resolutions, awkward shapes and ideal / non-ideal / noisy dies.
#include "pim/kernels/packed.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "pim/die.h"
#include "pim/im2col.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim {
namespace {

struct Operands {
  std::vector<std::int32_t> x, w;
};

Operands random_operands(const Decomposition& d, Index k, Index p, Index c_out, std::uint64_t seed) {
  RandomStream r(RngKey{seed, 0, Purpose::Operands, 1});
  Operands o;
  o.x.resize(static_cast<std::size_t>(k * p));
  o.w.resize(static_cast<std::size_t>(c_out * k));
  for (auto& v : o.x) v = static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_activation() + 1)));
  for (auto& v : o.w)
    v = d.min_weight() + static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_weight() - d.min_weight() + 1)));
  return o;
}

enum class Chip { Ideal, GainOffset, Smooth, Noisy };

void expect_same_as_reference(const Decomposition& d, int adc_bits, Chip chip, Index k, Index p, Index c_out,
                              std::uint64_t seed) {
  const Operands o = random_operands(d, k, p, c_out, seed);
  const Adc adc(d.p_lo(), d.p_hi(), adc_bits, seed % 3 == 0 ? 0.7 : 1.0);
  NonIdeality settings;
  if (chip != Chip::Ideal) {
    settings.gain_sigma = 0.03;
    settings.offset_sigma = 1.5;
  }
  if (chip == Chip::Smooth) {
    settings.curve = CurveModel::Smooth;
    settings.curve_strength = -0.9;
  }
  if (chip == Chip::Noisy) settings.noise_sigma = 0.7;
  const Die die(seed, 42, 3, settings);
  AdcBank bank = die.bank(1, adc, d.columns(k, c_out));
  die.set_noise(bank, 1, 5);
  std::vector<double> expected(static_cast<std::size_t>(c_out * p)), actual(expected.size());
  std::vector<std::int64_t> exact(expected.size()), actual_exact(expected.size());
  reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, expected.data());
  reference_exact_gemm(o.x.data(), o.w.data(), k, p, c_out, exact.data());
  PackedActivations px;
  PackedWeights pw;
  pack_activations(d, o.x.data(), k, p, px);
  pack_weights(d, o.w.data(), k, c_out, pw);
  packed_pim_gemm(d, bank, px, pw, k, c_out, p, actual.data(), actual_exact.data());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual[i], expected[i]) << d.str() << " adc_bits=" << adc_bits << " chip=" << static_cast<int>(chip)
                                      << " K=" << k << " P=" << p << " C_out=" << c_out << " seed=" << seed
                                      << " entry " << i;
    ASSERT_EQ(actual_exact[i], exact[i]) << d.str() << " entry " << i;
  }
}

TEST(PackedKernel, MatchesReferenceBitForBitOnSeededGrid) {
  std::uint64_t seed = 1;
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    for (int rows : {9, 72, 144, 13, 64, 65}) {
      if (scheme == Scheme::Native && rows > 72) continue;
      const int bits_pairs[][2] = {{2, 2}, {4, 4}, {3, 7}, {8, 5}};
      for (const auto& bits : bits_pairs) {
        const Decomposition d{scheme, rows, bits[0], bits[1]};
        for (Chip chip : {Chip::Ideal, Chip::GainOffset, Chip::Smooth, Chip::Noisy}) {
          const int adc_bits = static_cast<int>(3 + seed % 6);  // 3..8
          const Index k = static_cast<Index>(rows) * (1 + static_cast<Index>(seed % 3)) + static_cast<Index>(seed % 7);
          expect_same_as_reference(d, adc_bits, chip, k, 1 + static_cast<Index>(seed % 17), 1 + static_cast<Index>(seed % 4),
                                   seed);
          ++seed;
        }
      }
    }
  }
}

TEST(PackedKernel, LosslessAndEdgeShapes) {
  // K = 1, K = N, K = N + 1; single pixel / channel; lossless bit counts.
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    const Decomposition d{scheme, scheme == Scheme::Native ? 3 : 31, 3, 3};
    int lossless = 1;
    while (static_cast<double>((1 << lossless) - 1) < d.p_hi() - d.p_lo()) ++lossless;
    for (Index k : {Index{1}, Index{d.rows}, Index{d.rows} + 1}) {
      expect_same_as_reference(d, lossless, Chip::Ideal, k, 5, 2, 100 + static_cast<std::uint64_t>(k));
      expect_same_as_reference(d, lossless, Chip::Noisy, k, 1, 1, 200 + static_cast<std::uint64_t>(k));
    }
  }
}

TEST(PackedKernel, NchwPackingEqualsIm2colPacking) {
  const Decomposition d{Scheme::BitSerial, 20, 4, 4};
  const Im2colGeometry g{2, 5, 6, 7, 3, 3, 2, 1};
  RandomStream r(RngKey{9, 0, Purpose::Operands, 0});
  std::vector<float> x(static_cast<std::size_t>(g.batch * g.channels * g.height * g.width));
  std::vector<std::int32_t> xi(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    xi[i] = static_cast<std::int32_t>(r.below(16));
    x[i] = static_cast<float>(xi[i]);
  }
  std::vector<std::int32_t> cols(static_cast<std::size_t>(g.reduction() * g.pixels()));
  im2col(g, xi.data(), cols.data());
  PackedActivations a, b;
  pack_activations(d, cols.data(), g.reduction(), g.pixels(), a);
  pack_activations(d, g, x.data(), b);
  EXPECT_EQ(a.bits, b.bits);
  // NCHW output placement: image_pixels = OH * OW.
  const Index c_out = 3;
  std::vector<std::int32_t> w(static_cast<std::size_t>(c_out * g.reduction()));
  for (auto& v : w) v = static_cast<std::int32_t>(r.below(16)) - 8;
  PackedWeights pw;
  pack_weights(d, w.data(), g.reduction(), c_out, pw);
  const Index hw = g.out_height() * g.out_width();
  std::vector<double> matrix(static_cast<std::size_t>(c_out * g.pixels())), nchw(matrix.size());
  const AdcBank bank(Adc(d.p_lo(), d.p_hi(), 5));
  packed_pim_gemm(d, bank, a, pw, g.reduction(), c_out, g.pixels(), matrix.data(), nullptr);
  packed_pim_gemm(d, bank, a, pw, g.reduction(), c_out, hw, nchw.data(), nullptr);
  for (Index o = 0; o < c_out; ++o)
    for (Index pixel = 0; pixel < g.pixels(); ++pixel)
      EXPECT_EQ(nchw[static_cast<std::size_t>((pixel / hw) * c_out * hw + o * hw + pixel % hw)],
                matrix[static_cast<std::size_t>(o * g.pixels() + pixel)]);
  // Out-of-range and non-integer activations are rejected.
  x[7] = 16.0f;
  EXPECT_THROW(pack_activations(d, g, x.data(), b), Error);
  x[7] = 2.5f;
  EXPECT_THROW(pack_activations(d, g, x.data(), b), Error);
  std::vector<float> wf(w.begin(), w.end());
  wf[0] = -9.0f;
  EXPECT_THROW(pack_weights(d, wf.data(), g.reduction(), c_out, pw), Error);
}

}  // namespace
}  // namespace pimqat::pim
